#pragma once
// The texts `tern embed` and `tern tokenize` take: --text values and --text-file files, in the
// order given, read lazily (files stream through frontend::TextReader), each named the same way
// in every message: "text N" (the N-th --text value, 1-based) or "FILE:LINE" ("stdin:LINE").
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "engine/frontend/args.hpp"
#include "engine/frontend/text.hpp"
#include "engine/frontend/text_input.hpp"
#include "tern/error.hpp"

#define TERN_TEXT_FILE_HELP                                                                      \
  "Text files: one text per line; '\\n' or '\\r\\n' ends a line; an empty line is an empty "     \
  "text;\n"                                                                                      \
  "a UTF-8 byte-order mark at the start is skipped. A line may hold at most 1 MiB (1,048,576\n"  \
  "bytes): a longer one is an error, or cut there with --truncate. Invalid UTF-8 is an error\n"  \
  "giving its byte offset. FILE must be a regular file or a FIFO; '-' reads standard input as\n" \
  "a stream (not a directory or a closed descriptor). Devices such as /dev/zero are refused.\n"

namespace tern::cli {

class TextSources {
 public:
  struct Item {
    std::string name, value;
  };
  void add_texts(std::vector<std::string> texts) {
    for (auto& t : texts) sources_.push_back({std::move(t), "", false, nullptr});
  }
  void add_file(std::string path) { sources_.push_back({"", std::move(path), true, nullptr}); }
  size_t inline_total() const {
    size_t n = 0;
    for (const auto& s : sources_) n += !s.is_file;
    return n;
  }
  bool empty() const { return sources_.empty(); }
  bool has_files() const {
    for (const auto& s : sources_)
      if (s.is_file) return true;
    return false;
  }
  // Opens every file (refusing a bad one by name) before any model is loaded.
  // recover: a line with invalid UTF-8 fails alone (next() throws, the next call goes on).
  void open(bool truncate, bool recover = false) {
    for (auto& s : sources_)
      if (s.is_file) {
        s.reader = std::make_unique<frontend::TextReader>(s.path, truncate);
        s.reader->set_recover(recover);
      }
  }
  std::vector<const frontend::TextReader*> readers() const {
    std::vector<const frontend::TextReader*> out;
    for (const auto& s : sources_)
      if (s.reader) out.push_back(s.reader.get());
    return out;
  }
  // "FILE:LINE" of the line a failed next() was reading.
  std::string current_label() const {
    return at_ < sources_.size() && sources_[at_].reader ? sources_[at_].reader->line_label() : "";
  }
  // The next text in order; false when all are read.
  bool next(Item* item) {
    for (; at_ < sources_.size(); ++at_) {
      Source& s = sources_[at_];
      if (!s.is_file) {
        item->name = "text " + std::to_string(++inline_count_);
        item->value = std::move(s.text);
        ++at_;
        return true;
      }
      if (s.reader->next(&item->value)) {
        item->name = s.reader->line_label();
        return true;
      }
    }
    return false;
  }

 private:
  struct Source {
    std::string text, path;
    bool is_file = false;
    std::unique_ptr<frontend::TextReader> reader;
  };
  std::vector<Source> sources_;
  size_t at_ = 0;
  int64_t inline_count_ = 0;
};

// --max-length N: the one rule of every command: 2 ([CLS] and [SEP]) up to the model's limit.
// parse_max_length checks the lower bound before the model loads, check_max_length the upper.
inline int parse_max_length(frontend::ArgParser& p) {
  const int64_t v = p.int_value(INT_MIN, INT_MAX);
  if (v < 2)
    throw Error("--max-length " + std::to_string(v) +
                " is out of range: at least 2 ([CLS] and [SEP]), at most the model's limit");
  return static_cast<int>(v);
}
inline void check_max_length(int max_length, int model_max) {
  if (max_length > model_max)
    throw Error("--max-length " + std::to_string(max_length) + " is out of range (2.." +
                std::to_string(model_max) + ", the model's limit)");
}

}  // namespace tern::cli
