// `tern tokenize`: the ids a text model sees, one JSON line per text ({"ids": [...]}), special
// tokens included. Reads only the weight file's "tokenizer" and "vocab" metadata.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "engine/cli/commands.hpp"
#include "engine/core/error.hpp"
#include "engine/core/tokenizer.hpp"
#include "engine/core/weights.hpp"

namespace tern::cli {
namespace {

const char kHelp[] =
    "usage: tern tokenize MODEL.tern [--text TEXT ...] [--text-file FILE|-] [--truncate]\n"
    "                     [--max-length N]\n"
    "\n"
    "Prints the token ids of each text as one JSON line {\"ids\": [...]}, [CLS] and [SEP]\n"
    "included, exactly as Hugging Face's fast BERT tokenizer would for the model's vocabulary.\n"
    "\n"
    "  --text TEXT ...    texts to tokenize (every argument up to the next option)\n"
    "  --text-file FILE   one text per line, UTF-8 ('\\r\\n' line ends accepted); '-' reads stdin\n"
    "  --max-length N     at most N tokens including [CLS] and [SEP] (default: the model's)\n"
    "  --truncate         keep the first max-length - 2 word pieces of a longer text instead of\n"
    "                     failing\n"
    "\n"
    "Texts are printed in the order given, once all of them are tokenized. Invalid UTF-8 or an\n"
    "over-long text is an error naming the text and the reason, and nothing is printed.\n";

struct Text {
  std::string name;  // "--text 2" or "FILE:LINE"
  std::string value;
};

void add_text_file(const std::string& path, std::vector<Text>* out) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) fail(path, ": cannot open: no such file");
    if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file, expected a text file");
    file.open(path, std::ios::binary);
    if (!file) fail(path, ": cannot open");
    in = &file;
  }
  const std::string label = path == "-" ? "stdin" : path;
  std::string line;
  for (int64_t n = 1; std::getline(*in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (n == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // BOM
    out->push_back({label + ":" + std::to_string(n), line});
  }
  if (in->bad()) fail(label, ": read error");
}

int parse_int(const std::string& flag, const std::string& v) {
  try {
    size_t pos = 0;
    const int x = std::stoi(v, &pos);
    if (pos == v.size()) return x;
  } catch (...) {
  }
  fail(flag, ": expected an integer, got '", v, "'");
}

}  // namespace

int cmd_tokenize(const Args& args) {
  if (args.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  std::string model_path;
  std::vector<Text> texts;
  bool truncate = false;
  int max_length = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--text") {
      if (i + 1 >= args.size()) fail("--text needs at least one text");
      do {
        texts.push_back({"--text " + std::to_string(texts.size() + 1), args[++i]});
      } while (i + 1 < args.size() && (args[i + 1].empty() || args[i + 1][0] != '-'));
    } else if (a == "--text-file") {
      if (i + 1 >= args.size()) fail("--text-file needs a file name (or - for stdin)");
      add_text_file(args[++i], &texts);
    } else if (a == "--truncate") {
      truncate = true;
    } else if (a == "--max-length") {
      if (i + 1 >= args.size()) fail("--max-length needs a value");
      max_length = parse_int(a, args[++i]);
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      fail("unknown option '", a, "' (see tern tokenize --help)");
    } else if (model_path.empty()) {
      model_path = a;
    } else {
      fail("unexpected argument '", a, "': texts go after --text (see tern tokenize --help)");
    }
  }
  if (model_path.empty()) fail("no model file given (see tern tokenize --help)");
  if (texts.empty()) fail("no texts: give --text TEXT or --text-file FILE");

  const auto weights = WeightFile::open(model_path);
  if (!weights->has_metadata("tokenizer") || !weights->has_metadata("vocab"))
    fail(model_path, ": a ", weights->architecture(),
         " file has no tokenizer (tokenize needs a text model)");
  TokenizerConfig config;
  try {
    config = TokenizerConfig::from_json(weights->metadata("tokenizer"));
  } catch (const Error& e) {
    fail(model_path, ": ", e.what());
  }
  if (max_length != 0) {
    if (max_length < 2 || max_length > config.max_length)
      fail("--max-length ", max_length, " is out of range (2..", config.max_length,
           ", the model's limit)");
    config.max_length = max_length;
  }
  std::unique_ptr<WordPieceTokenizer> tokenizer;
  try {
    tokenizer = std::make_unique<WordPieceTokenizer>(weights->metadata("vocab"), config);
  } catch (const Error& e) {
    fail(model_path, ": ", e.what());
  }

  // Every text is tokenized before anything is printed: a bad text fails the command without
  // leaving partial output behind.
  std::string out;
  for (const Text& text : texts) {
    std::vector<int32_t> ids;
    try {
      ids = tokenizer->encode(text.value, truncate);
    } catch (const Error& e) {
      fail(text.name, ": ", e.what());
    }
    out += "{\"ids\": [";
    for (size_t k = 0; k < ids.size(); ++k) {
      if (k) out += ", ";
      out += std::to_string(ids[k]);
    }
    out += "]}\n";
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size())
    fail("cannot write to standard output");
  if (std::fflush(stdout) != 0) fail("cannot write to standard output");
  return 0;
}

}  // namespace tern::cli
