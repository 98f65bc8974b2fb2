#pragma once
// The one reader of text files (one text per line) for every front end: `tern embed`,
// `tern tokenize`, the server and the Python package read texts through it alike.
//
// - Streaming, bounded memory: the file is read in 64 KiB blocks and a line is held only up to
//   kMaxTextLineBytes (1 MiB). A longer line is an error naming the line, or, with truncate, is
//   cut at the cap (at a character boundary) and the rest of it is read and dropped, not held.
// - UTF-8 is checked as the bytes are read: invalid UTF-8 (or a sequence cut by the end of the
//   file) is an error giving its byte offset in the file and its line, as soon as it is read.
// - Lines end at '\n'; a '\r' just before it is dropped ("\r\n" files). A last line without '\n'
//   counts; an empty file holds no texts; an empty line is an empty text.
// - A UTF-8 byte-order mark (EF BB BF) at the very start of the file is skipped; anywhere else
//   it is text (U+FEFF).
// - What may be read: '-' is standard input, read as a stream whatever it is (pipe, file,
//   terminal) except a directory or a closed descriptor (or one open only for writing, which is
//   how `tern` holds a closed one), each its own error. A named file must be
//   a regular file or a FIFO (which streams); a directory, a character or block device (such as
//   /dev/zero or /dev/urandom) or a socket is refused when opened, before anything is read.
// The file is opened (and checked) by the constructor, so a front end can refuse a bad input
// before it loads a model. Errors are tern::Error, one line, naming the file.
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace tern::frontend {

constexpr size_t kMaxTextLineBytes = size_t(1) << 20;

class TextReader {
 public:
  TextReader(const std::string& path, bool truncate, size_t max_line_bytes = kMaxTextLineBytes);
  ~TextReader();
  TextReader(const TextReader&) = delete;
  TextReader& operator=(const TextReader&) = delete;

  // The next line, without its line end; false at the end of the input.
  bool next(std::string* line);
  // Recovering (`--keep-going`): a line with invalid UTF-8 is still an error, but only once the
  // whole line has been read (and dropped), so that next() goes on with the following line.
  // Otherwise the error comes as soon as the bad byte is read.
  void set_recover(bool recover) { recover_ = recover; }
  int64_t line_number() const { return line_; }  // of the line next() returned last (1-based)
  bool truncated() const { return truncated_; }  // that line was cut at the cap
  // "stdin" or the path, printable; and "LABEL:LINE" for the last line.
  const std::string& label() const { return label_; }
  std::string line_label() const { return label_ + ":" + std::to_string(line_); }
  // The file's identity (st_dev, st_ino) and whether it is a regular file.
  dev_t device() const { return dev_; }
  ino_t inode() const { return ino_; }
  bool is_regular() const { return regular_; }

 private:
  bool fill();
  [[noreturn]] void invalid_utf8(uint64_t offset) const;

  int fd_ = -1;
  bool own_fd_ = false;
  bool truncate_;
  bool recover_ = false;
  size_t max_line_;
  std::string label_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool regular_ = false;
  std::string buf_;
  size_t pos_ = 0, len_ = 0;
  uint64_t consumed_ = 0;  // file offset of buf_[0]
  bool eof_ = false;
  int64_t line_ = 0;
  bool truncated_ = false;
  bool at_start_ = true;
};

}  // namespace tern::frontend
