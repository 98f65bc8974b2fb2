// `tern tokenize`: the ids a text model sees, one JSON line per text ({"ids": [...]}), special
// tokens included. Reads only the weight file's tokenizer (tern::Tokenizer), no tensor data.
#include <memory>
#include <string>
#include <vector>

#include "engine/cli/commands.hpp"
#include "engine/cli/text_args.hpp"
#include "engine/frontend/args.hpp"
#include "engine/frontend/output.hpp"
#include "tern/tern.hpp"

namespace tern::cli {
namespace {

const char kHelp[] =
    "usage: tern tokenize MODEL.tern [--text TEXT ...] [--text-file FILE|-] [--truncate]\n"
    "                     [--max-length N]\n"
    "\n"
    "Prints the token ids of each text as one JSON line {\"ids\": [...]}, the model's special\n"
    "tokens (such as [CLS] and [SEP]) included, exactly as its Hugging Face fast tokenizer would.\n"
    "\n"
    "  --text TEXT ...    texts to tokenize (every argument up to the next option; after `--`,\n"
    "                     every argument; '-5' and '-' are texts, not options)\n"
    "  --text-file FILE   one text per line, UTF-8, read as a stream; '-' reads stdin\n"
    "  --max-length N     at most N tokens including [CLS] and [SEP]: 2 up to the model's\n"
    "                     limit (tern info shows it; default: that limit)\n"
    "  --truncate         keep the first max-length - 2 word pieces of a longer text (and the\n"
    "                     first 1 MiB of a longer line of a text file) instead of failing\n"
    "\n" TERN_TEXT_FILE_HELP
    "\n"
    "Texts are printed in the order given, once all of them are tokenized. Invalid UTF-8 or an\n"
    "over-long text is an error naming the text (text N, FILE:LINE) and nothing is printed.\n";

}  // namespace

int cmd_tokenize(const Args& args) {
  if (args.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  std::string model_path;
  TextSources texts;
  bool truncate = false;
  int max_length = 0;
  frontend::ArgParser p(args, "tern tokenize");
  while (p.next()) {
    if (p.is("-h", "--help")) {
      frontend::write_stdout(kHelp);
      return 0;
    } else if (p.is("--text")) {
      texts.add_texts(p.values());
    } else if (p.is("--text-file")) {
      texts.add_file(p.value());
    } else if (p.is("--truncate")) {
      p.flag();
      truncate = true;
    } else if (p.is("--max-length")) {
      max_length = parse_max_length(p);
    } else if (p.is_option()) {
      p.unknown();
    } else if (model_path.empty()) {
      model_path = p.arg();
    } else {
      throw Error("unexpected argument '" + frontend::printable(p.arg()) +
                  "': texts go after --text (see tern tokenize --help)");
    }
  }
  if (model_path.empty()) throw Error("no model file given (see tern tokenize --help)");
  if (texts.empty()) throw Error("no texts: give --text TEXT or --text-file FILE");
  texts.open(truncate);

  const auto tokenizer = Tokenizer::load(model_path);
  check_max_length(max_length, tokenizer->max_length());

  // Every text is tokenized before anything is printed: a bad text fails the command without
  // leaving partial output behind.
  std::string out;
  TextSources::Item text;
  while (texts.next(&text)) {
    std::vector<int32_t> ids;
    try {
      ids = tokenizer->tokenize(text.value, truncate, max_length);
    } catch (const Error& e) {
      throw Error(text.name + ": " + e.what());
    }
    out += "{\"ids\": [";
    for (size_t k = 0; k < ids.size(); ++k) {
      if (k) out += ", ";
      out += std::to_string(ids[k]);
    }
    out += "]}\n";
  }
  frontend::write_stdout(out);
  return 0;
}

}  // namespace tern::cli
