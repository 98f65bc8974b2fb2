#include "engine/frontend/text_input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/frontend/text.hpp"
#include "tern/error.hpp"

namespace tern::frontend {
namespace {

constexpr size_t kBlock = 64 * 1024;

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

}  // namespace

TextReader::TextReader(const std::string& path, bool truncate, size_t max_line_bytes)
    : truncate_(truncate), max_line_(max_line_bytes) {
  struct stat st;
  if (path == "-") {
    label_ = "stdin";
    const int flags = ::fcntl(STDIN_FILENO, F_GETFL);
    if (::fstat(STDIN_FILENO, &st) != 0 || flags == -1 || (flags & O_ACCMODE) == O_WRONLY)
      throw Error("--text-file -: standard input is closed (nothing to read texts from)");
    if (S_ISDIR(st.st_mode))
      throw Error("--text-file -: standard input is a directory, expected text");
    fd_ = STDIN_FILENO;
  } else {
    label_ = printable(path);
    if (path.empty()) throw Error("--text-file: empty file name");
    if (::stat(path.c_str(), &st) != 0)
      throw Error(label_ + ": cannot open: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
      throw Error(label_ + ": is " + kind_of(st.st_mode) +
                  "; a text file must be a regular file or a FIFO ('-' reads standard input)");
    do {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) throw Error(label_ + ": cannot open: " + std::strerror(errno));
    own_fd_ = true;
    if (::fstat(fd_, &st) != 0 || (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))) {
      ::close(fd_);
      throw Error(label_ + ": changed while being opened; expected a regular file or a FIFO");
    }
  }
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  regular_ = S_ISREG(st.st_mode);
  buf_.resize(kBlock);
}

TextReader::~TextReader() {
  if (own_fd_) ::close(fd_);
}

bool TextReader::fill() {
  if (eof_) return false;
  if (pos_ < len_) return true;
  consumed_ += len_;
  pos_ = len_ = 0;
  for (;;) {
    const ssize_t n = ::read(fd_, buf_.data(), buf_.size());
    if (n > 0) {
      len_ = static_cast<size_t>(n);
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    throw Error(label_ + ": read error: " + std::strerror(errno));
  }
}

void TextReader::invalid_utf8(uint64_t offset) const {
  throw Error(label_ + ":" + std::to_string(line_) + ": invalid UTF-8 at byte offset " +
              std::to_string(offset) + " of the file");
}

bool TextReader::next(std::string* line) {
  line->clear();
  truncated_ = false;
  if (!fill()) return false;
  ++line_;
  // UTF-8 state across blocks: `need` continuation bytes are still due for the sequence that
  // started at file offset `seq_start`; the next one must be in [lo, hi].
  int need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  uint64_t seq_start = 0;
  bool full = false;  // the line reached the cap: the rest is checked and dropped
  bool bad = false;   // recovering: the line holds invalid UTF-8 at bad_offset; skip to its end
  uint64_t bad_offset = 0;
  const auto invalid = [&](uint64_t offset) {
    if (!recover_) invalid_utf8(offset);
    if (!bad) bad_offset = offset;
    bad = true;
    need = 0;
    lo = 0x80;
    hi = 0xBF;
  };
  for (;;) {
    if (!fill()) break;
    const size_t begin = pos_;
    size_t i = pos_;
    bool ended = false;
    for (; i < len_; ++i) {
      const unsigned char c = static_cast<unsigned char>(buf_[i]);
      if (need > 0) {
        if (c < lo || c > hi) {
          invalid(seq_start);
          continue;
        }
        --need;
        lo = 0x80;
        hi = 0xBF;
        continue;
      }
      if (c == '\n') {
        ended = true;
        break;
      }
      if (c < 0x80) continue;
      seq_start = consumed_ + i;
      if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
      } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
      } else {
        invalid(seq_start);
      }
    }
    if (!full && !bad) {
      const size_t room = max_line_ - line->size();
      const size_t take = i - begin;
      if (take <= room) {
        line->append(buf_.data() + begin, take);
      } else {
        if (!truncate_)
          throw Error(line_label() + ": the line is longer than " + std::to_string(max_line_) +
                      " bytes, the cap on one text line (--truncate cuts it)");
        line->append(buf_.data() + begin, room);
        full = true;
        truncated_ = true;
        // Cut back to a character boundary: drop a sequence the cap split.
        size_t k = line->size();
        while (k > 0 && (static_cast<unsigned char>((*line)[k - 1]) & 0xC0) == 0x80) --k;
        if (k > 0 && static_cast<unsigned char>((*line)[k - 1]) >= 0xC0) {
          const size_t n = utf8_sequence_length(*line, k - 1);
          if (n == 0) line->resize(k - 1);
        }
      }
    }
    pos_ = ended ? i + 1 : i;
    if (ended) break;
  }
  if (need > 0) invalid(seq_start);
  if (bad) {
    line->clear();
    invalid_utf8(bad_offset);  // the whole line is consumed: next() goes on with the next one
  }
  if (!line->empty() && line->back() == '\r' && !truncated_) line->pop_back();
  if (at_start_) {
    at_start_ = false;
    if (line->compare(0, 3, "\xEF\xBB\xBF") == 0) line->erase(0, 3);
  }
  return true;
}

}  // namespace tern::frontend
