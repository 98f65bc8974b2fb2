// `tern embed`: images or texts in, embeddings out (.npy, .jsonl or JSON lines on stdout).
#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/cli/commands.hpp"
#include "engine/cli/image_inputs.hpp"
#include "engine/cli/progress.hpp"
#include "engine/cli/text_args.hpp"
#include "engine/frontend/args.hpp"
#include "engine/frontend/output.hpp"
#include "engine/frontend/text.hpp"
#include "tern/tern.hpp"

namespace tern::cli {
namespace {

using frontend::printable;

const char kHelp[] =
    "usage: tern embed MODEL.tern [IMAGE|DIR ...] [--text TEXT ...] [--text-file FILE] [options]\n"
    "\n"
    "Embeds images (image models) or texts (text models), in input order.\n"
    "A directory stands for the .jpg/.jpeg/.png files under it, recursively, sorted by path.\n"
    "Symlinks to files are followed; symlinked directories are not (no loops), and dangling\n"
    "symlinks, FIFOs/devices with an image name and unreadable directories are skipped: their\n"
    "count is printed on stderr.\n"
    "\n"
    "inputs:\n"
    "  --text TEXT ...      texts to embed (every argument up to the next option; after `--`,\n"
    "                       every argument; '-5' and '-' are texts, not options)\n"
    "  --text-file FILE     one text per line, UTF-8, read as a stream; '-' reads standard input\n"
    "output:\n"
    "  -o, --output FILE    .npy (float32) or .jsonl; default: JSON lines on stdout. It must not\n"
    "                       be one of the inputs. A new file's mode follows the umask; an "
    "existing\n"
    "                       file keeps its mode\n"
    "                       .npy shapes: [N, D] pooled; [T, D] one unpooled text;\n"
    "                       [N, T, D] unpooled images; several unpooled texts are ragged: use "
    ".jsonl\n"
    "  --pooling P          none | cls | mean | max | mean_sqrt_len; default: the model's default\n"
    "                       pooling (tern info describes the model's default output; a\n"
    "                       sentence-transformers file pools as its directory said)\n"
    "  --layer NAME         embed from that layer instead of the model's usual output (a wrong\n"
    "                       name's error lists the valid ones; for transformers -k counts back\n"
    "                       from the last block)\n"
    "  --normalize          L2-normalise each output vector\n"
    "  --logits             class scores instead of embeddings (needs a file exported with "
    "--keep-head)\n"
    "options:\n"
    "  --batch N            inputs per forward pass (default 8)\n"
    "  --threads N          worker threads: 0 (default) = all available cores; at most 8 x the\n"
    "                       available cores (more is refused)\n"
    "  --max-length N       text: at most N tokens including [CLS] and [SEP]: 2 up to the model's\n"
    "                       limit (default: that limit)\n"
    "  --truncate           text: cut longer texts (and text-file lines over 1 MiB) instead of "
    "failing\n"
    "  --prompt NAME        text: prepend the file's prompt NAME (sentence-transformers prompts)\n"
    "  --prompt-text TEXT   text: prepend TEXT to every text (e.g. \"query: \")\n"
    "  --keep-going         embed what can be embedded, list the failures, exit 1 if any (an\n"
    "                       unreadable text file still stops the command)\n"
    "  --quiet              no progress bar\n"
    "\n" TERN_TEXT_FILE_HELP
    "\n"
    "JSON output: \"input\" is the input's name (a path, \"text N\" or FILE:LINE); bytes of a "
    "name\n"
    "that are not UTF-8 are written as U+FFFD, so every line is valid UTF-8 JSON.\n"
    "Errors name the input and exit non-zero. Output files are written whole or not at all.\n";

void append_json_line(std::string& os, const std::string& name, const Embedding& e) {
  char buf[32];
  os += "{\"input\": ";
  frontend::append_json_string(os, name);
  os += ", \"shape\": [";
  for (size_t i = 0; i < e.shape.size(); ++i) {
    if (i) os += ", ";
    os += std::to_string(e.shape[i]);
  }
  os += "], \"embedding\": ";
  const int64_t d = e.shape.back();
  const bool rows = e.shape.size() == 2;
  if (rows) os += '[';
  for (size_t i = 0; i < e.values.size(); ++i) {
    if (i % d == 0)
      os += i ? "], [" : "[";
    else
      os += ", ";
    std::snprintf(buf, sizeof(buf), "%.9g", e.values[i]);
    os += buf;
  }
  os += ']';
  if (rows) os += ']';
  os += "}\n";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// An API error for a call with one text names it "text 1"; the CLI names it its own way.
std::string relabel(const std::string& name, const std::string& message) {
  const std::string api = "text 1: ";
  if (message.compare(0, api.size(), api) == 0) return name + ": " + message.substr(api.size());
  return name + ": " + message;
}

struct Failure {
  std::string name, why;
};

}  // namespace

int cmd_embed(const Args& args) {
  if (args.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  std::string model_path;
  std::optional<std::string> output;
  std::vector<std::string> paths;
  TextSources texts;
  Options options;
  EmbedOptions opts;
  bool keep_going = false, quiet = false;
  frontend::ArgParser p(args, "tern embed");
  while (p.next()) {
    if (p.is("-h", "--help")) {
      frontend::write_stdout(kHelp);
      return 0;
    } else if (p.is("--text")) {
      texts.add_texts(p.values());
    } else if (p.is("--text-file")) {
      texts.add_file(p.value());
    } else if (p.is("-o", "--output")) {
      output = p.value();
    } else if (p.is("--pooling")) {
      opts.pooling = parse_pooling(p.value());
    } else if (p.is("--layer")) {
      opts.layer = p.value();
    } else if (p.is("--normalize")) {
      p.flag();
      opts.normalize = true;
    } else if (p.is("--logits")) {
      p.flag();
      opts.logits = true;
    } else if (p.is("--batch")) {
      opts.batch = static_cast<int>(p.int_value(1, INT_MAX));
    } else if (p.is("--threads")) {
      const int64_t t = p.int_value(INT_MIN, INT_MAX);
      if (t < 0) throw Error("--threads must be >= 0 (0 = all cores), got " + std::to_string(t));
      if (t > max_threads())
        throw Error("--threads " + std::to_string(t) + " is over the maximum of " +
                    std::to_string(max_threads()) + " (8 x the available cores)");
      options.threads = static_cast<int>(t);
    } else if (p.is("--max-length")) {
      opts.max_length = parse_max_length(p);
    } else if (p.is("--truncate")) {
      p.flag();
      opts.truncate = true;
    } else if (p.is("--prompt")) {
      opts.prompt = p.value();
    } else if (p.is("--prompt-text")) {
      opts.prompt_text = p.value();
    } else if (p.is("--keep-going")) {
      p.flag();
      keep_going = true;
    } else if (p.is("--quiet", "-q")) {
      p.flag();
      quiet = true;
    } else if (p.is_option()) {
      p.unknown();
    } else if (model_path.empty()) {
      model_path = p.arg();
    } else {
      paths.push_back(p.arg());
    }
  }
  // Everything that can be checked without the model is checked before it loads.
  if (model_path.empty()) throw Error("no model file given (see tern embed --help)");
  if (paths.empty() && texts.empty())
    throw Error(
        "nothing to embed: no inputs given (image files or directories, --text or --text-file)");
  if (output) {
    frontend::check_output_path("-o", *output);
    if (!ends_with(*output, ".npy") && !ends_with(*output, ".jsonl"))
      throw Error(printable(*output) + ": output must end in .npy or .jsonl");
  }
  texts.open(opts.truncate, keep_going);
  std::vector<std::string> images;
  if (texts.empty()) {
    for (const auto& path : paths) add_image_input(path, "tern embed", images);
  }
  if (output) {
    if (const auto out_id = frontend::file_id(*output)) {
      const auto same = [&](const std::string& what) {
        throw Error("-o " + printable(*output) + ": the output is also an input (" + what +
                    "); refusing to overwrite it");
      };
      if (frontend::file_id(model_path) == out_id) same("the model file");
      for (const auto* r : texts.readers())
        if (frontend::FileId{static_cast<uint64_t>(r->device()),
                             static_cast<uint64_t>(r->inode())} == *out_id)
          same("--text-file " + r->label());
      for (const auto& img : images)
        if (frontend::file_id(img) == out_id) same(printable(img));
    }
  }

  auto model = Model::load(model_path, options);
  // A two-tower model (CLIP) takes either: texts when --text / --text-file are given, else images.
  const bool both = model->is_text_model() && model->is_image_model();
  if (both && !paths.empty() && !texts.empty())
    throw Error(model->architecture() + " embeds images or texts in one run, not both: give "
                "image files, or texts with --text / --text-file");
  const bool text_mode = model->is_text_model() && (!both || !texts.empty());
  if (text_mode) {
    if (!paths.empty())
      throw Error(printable(paths[0]) + ": " + model->architecture() +
                  " is a text model: give texts with --text or --text-file");
    if (opts.max_length != 0) check_max_length(opts.max_length, model->max_length());
  } else if (!texts.empty()) {
    throw Error(model->architecture() +
                " is an image model: give image files or directories, not texts");
  }

  // Embed batch by batch; with --keep-going a failing batch is retried input by input.
  std::vector<Embedding> results;
  std::vector<std::string> names;
  std::vector<Failure> failures;
  size_t seen = 0;
  const size_t bs = static_cast<size_t>(opts.batch);
  Progress progress(
      text_mode ? (texts.has_files() ? 0 : texts.inline_total()) : images.size(),
      !quiet);
  const auto keep = [&](std::vector<Embedding>& embs, const std::vector<std::string>& batch_names) {
    for (size_t i = 0; i < embs.size(); ++i) {
      results.push_back(std::move(embs[i]));
      names.push_back(batch_names[i]);
    }
  };
  if (text_mode) {
    // The prompt (--prompt, --prompt-text, the file's default) goes in front of every text;
    // prompt_tokens checks it once and says what pooling leaves out.
    EmbedOptions text_opts = opts;
    text_opts.pool_skip_tokens = model->prompt_tokens(opts);
    TextSources::Item item;
    bool more = true;
    while (more) {
      std::vector<std::vector<int32_t>> ids;
      std::vector<std::string> batch_names;
      for (;;) {
        if (ids.size() >= bs) break;
        try {
          more = texts.next(&item);
        } catch (const Error& e) {
          if (!keep_going) throw;
          ++seen;
          failures.push_back({texts.current_label(), e.what()});  // a line of invalid UTF-8
          continue;
        }
        if (!more) break;
        ++seen;
        try {
          ids.push_back(model->tokenize(item.value, opts));
          batch_names.push_back(item.name);
        } catch (const Error& e) {
          if (!keep_going) throw Error(item.name + ": " + e.what());
          failures.push_back({item.name, item.name + ": " + e.what()});
        }
      }
      if (ids.empty()) continue;
      try {
        auto embs = model->embed_token_ids(ids, text_opts);
        keep(embs, batch_names);
      } catch (const Error&) {
        for (size_t i = 0; i < ids.size(); ++i) {
          try {
            auto one = model->embed_token_ids({ids[i]}, text_opts);
            keep(one, {batch_names[i]});
          } catch (const Error& e1) {
            const std::string why = relabel(batch_names[i], e1.what());
            if (!keep_going) {
              progress.clear();
              throw Error(why);
            }
            failures.push_back({batch_names[i], why});
          }
        }
        if (!keep_going) throw;  // the batch failed but no text alone did
      }
      progress.advance(ids.size());
    }
  } else {
    seen = images.size();
    for (size_t b = 0; b < images.size(); b += bs) {
      const size_t n = std::min(bs, images.size() - b);
      const std::vector<std::string> batch(images.begin() + b, images.begin() + b + n);
      try {
        auto embs = model->embed_image_files(batch, opts);
        keep(embs, batch);
      } catch (const Error&) {
        if (!keep_going) {
          progress.clear();
          throw;
        }
        for (const auto& img : batch) {
          try {
            auto one = model->embed_image_files({img}, opts);
            keep(one, {img});
          } catch (const Error& e1) {
            failures.push_back({img, e1.what()});
          }
        }
      }
      progress.advance(n);
    }
  }
  progress.clear();
  if (seen == 0) throw Error("nothing to embed: the text files hold no lines");

  const std::string out_name = output ? printable(*output) : "";
  if (!results.empty()) {
    if (output && ends_with(*output, ".npy")) {
      const auto& s0 = results[0].shape;
      std::vector<int64_t> shape;
      const bool same = std::all_of(results.begin(), results.end(),
                                    [&](const Embedding& e) { return e.shape == s0; });
      if (results.size() == 1 && s0.size() == 2) {
        shape = s0;  // one unpooled text: [T, D]
      } else if (same) {
        shape = {static_cast<int64_t>(results.size())};
        shape.insert(shape.end(), s0.begin(), s0.end());
      } else {
        throw Error(out_name +
                    ": the outputs have different numbers of tokens (ragged); write .jsonl or "
                    "use --pooling cls|mean");
      }
      std::vector<float> all;
      for (const auto& e : results) all.insert(all.end(), e.values.begin(), e.values.end());
      frontend::write_npy_f32(*output, all.data(), shape);
    } else {
      std::string os;
      for (size_t i = 0; i < results.size(); ++i) append_json_line(os, names[i], results[i]);
      if (output)
        frontend::write_file_atomic(*output, os);
      else
        frontend::write_stdout(os);
    }
  }
  frontend::flush_stdout();
  for (const auto& f : failures)
    std::fprintf(stderr, "tern embed: failed: %s\n", frontend::one_line(f.why).c_str());
  if (!failures.empty()) {
    std::fprintf(stderr, "tern embed: %zu of %zu inputs failed%s\n", failures.size(), seen,
                 results.empty() ? "; nothing written" : "");
    return 1;
  }
  if (output)
    std::fprintf(stderr, "tern embed: wrote %zu embeddings to %s\n", results.size(),
                 out_name.c_str());
  return 0;
}

}  // namespace tern::cli
