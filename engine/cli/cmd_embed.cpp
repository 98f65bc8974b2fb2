// `tern embed`: images or texts in, embeddings out (.npy, .jsonl or JSON lines on stdout).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "engine/cli/commands.hpp"
#include "engine/cli/progress.hpp"
#include "engine/core/error.hpp"
#include "engine/core/npy.hpp"
#include "tern/tern.hpp"

namespace tern::cli {
namespace {

const char kHelp[] =
    "usage: tern embed MODEL.tern [IMAGE|DIR ...] [--text TEXT ...] [--text-file FILE] [options]\n"
    "\n"
    "Embeds images (image models: resnet50, vit_b_16) or texts (distilbert, bert), in input order.\n"
    "A directory stands for the .jpg/.jpeg/.png files under it, recursively, sorted by path.\n"
    "\n"
    "inputs:\n"
    "  --text TEXT ...      texts to embed (every argument up to the next option)\n"
    "  --text-file FILE     one text per line, UTF-8; '-' reads standard input\n"
    "output:\n"
    "  -o, --output FILE    .npy (float32) or .jsonl; default: JSON lines on stdout\n"
    "                       .npy shapes: [N, D] pooled; [T, D] one unpooled text;\n"
    "                       [N, T, D] unpooled images; several unpooled texts are ragged: use .jsonl\n"
    "  --pooling P          none | cls | mean | max | mean_sqrt_len. Defaults: resnet50\n"
    "                       its global average pool (mean), vit_b_16 cls, distilbert and bert\n"
    "                       none (one vector per token); a sentence-transformers file its own\n"
    "                       (tern info shows it)\n"
    "  --normalize          L2-normalise each output vector\n"
    "  --logits             class scores instead of embeddings (needs a file exported with --keep-head)\n"
    "options:\n"
    "  --batch N            inputs per forward pass (default 8)\n"
    "  --threads N          worker threads (default 0 = all available cores)\n"
    "  --max-length N       text: at most N tokens including [CLS] and [SEP] (default: the model's)\n"
    "  --truncate           text: cut longer texts instead of failing\n"
    "  --prompt NAME        text: prepend the file's prompt NAME (sentence-transformers prompts)\n"
    "  --prompt-text TEXT   text: prepend TEXT to every text (e.g. \"query: \")\n"
    "  --keep-going         embed what can be embedded, list the failures, exit 1 if any\n"
    "  --quiet              no progress bar\n"
    "\n"
    "Errors name the input and exit non-zero. Output files are written whole or not at all.\n";

struct Input {
  std::string name;  // path, or "text N"
  std::string text;  // texts only
};

int parse_int(const std::string& flag, const std::string& v) {
  try {
    size_t pos = 0;
    const int x = std::stoi(v, &pos);
    if (pos == v.size()) return x;
  } catch (...) {
  }
  fail(flag, ": expected an integer, got '", v, "'");
}

bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

void add_path(const std::string& arg, std::vector<Input>& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(arg, ec)) {
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(arg, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec) && is_image_file(it->path())) found.push_back(it->path().string());
    if (ec) fail(arg, ": cannot list directory: ", ec.message());
    if (found.empty()) fail(arg, ": directory contains no .jpg, .jpeg or .png files");
    std::sort(found.begin(), found.end());
    for (auto& f : found) out.push_back({f, ""});
  } else {
    out.push_back({arg, ""});
  }
}

void add_text_file(const std::string& path, std::vector<Input>& out) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) fail(path, ": cannot open: no such file");
    if (S_ISDIR(st.st_mode)) fail(path, ": is a directory, expected a text file");
    file.open(path, std::ios::binary);
    if (!file) fail(path, ": cannot open");
    in = &file;
  }
  const std::string label = path == "-" ? "stdin" : path;
  std::string line;
  int64_t n = 0;
  while (std::getline(*in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back({label + ":" + std::to_string(n), line});
  }
  if (in->bad()) fail(label, ": read error");
}

void json_string(std::ostream& os, const std::string& s) {
  os << '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': os << "\\\""; break;
      case '\\': os << "\\\\"; break;
      case '\n': os << "\\n"; break;
      case '\r': os << "\\r"; break;
      case '\t': os << "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          os << buf;
        } else {
          os << static_cast<char>(c);
        }
    }
  }
  os << '"';
}

void json_line(std::ostream& os, const std::string& name, const Embedding& e) {
  char buf[32];
  os << "{\"input\": ";
  json_string(os, name);
  os << ", \"shape\": [";
  for (size_t i = 0; i < e.shape.size(); ++i) os << (i ? ", " : "") << e.shape[i];
  os << "], \"embedding\": ";
  const int64_t d = e.shape.back();
  const bool rows = e.shape.size() == 2;
  if (rows) os << '[';
  for (size_t i = 0; i < e.values.size(); ++i) {
    if (i % d == 0) os << (i ? "], [" : "[");
    else os << ", ";
    std::snprintf(buf, sizeof(buf), "%.9g", e.values[i]);
    os << buf;
  }
  os << ']';
  if (rows) os << ']';
  os << "}\n";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int cmd_embed(const Args& args) {
  if (args.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  std::string model_path, output;
  std::vector<std::string> paths;
  std::vector<Input> texts;
  std::vector<std::string> text_files;
  Options options;
  EmbedOptions opts;
  bool keep_going = false, quiet = false, saw_text = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail(a, " needs a value");
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--text") {
      saw_text = true;
      if (i + 1 >= args.size()) fail("--text needs at least one text");
      while (i + 1 < args.size() && (args[i + 1].empty() || args[i + 1][0] != '-' || args[i + 1] == "-"))
        texts.push_back({"", args[++i]});
    } else if (a == "--text-file") {
      text_files.push_back(value());
    } else if (a == "-o" || a == "--output") {
      output = value();
    } else if (a == "--pooling") {
      const std::string& p = value();
      if (p == "default") fail("--pooling: expected none, cls, mean, max or mean_sqrt_len");
      try {
        opts.pooling = parse_pooling(p);
      } catch (const Error& e) {
        fail("--pooling: ", e.what());
      }
    } else if (a == "--normalize") {
      opts.normalize = true;
    } else if (a == "--logits") {
      opts.logits = true;
    } else if (a == "--batch") {
      opts.batch = parse_int(a, value());
      if (opts.batch < 1) fail("--batch must be >= 1");
    } else if (a == "--threads") {
      options.threads = parse_int(a, value());
      if (options.threads < 0) fail("--threads must be >= 0 (0 = all cores)");
    } else if (a == "--max-length") {
      opts.max_length = parse_int(a, value());
      if (opts.max_length < 2) fail("--max-length must be >= 2 ([CLS] and [SEP])");
    } else if (a == "--truncate") {
      opts.truncate = true;
    } else if (a == "--prompt") {
      opts.prompt = value();
    } else if (a == "--prompt-text") {
      opts.prompt_text = value();
    } else if (a == "--keep-going") {
      keep_going = true;
    } else if (a == "--quiet" || a == "-q") {
      quiet = true;
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      fail("unknown option ", a, " (see tern embed --help)");
    } else if (model_path.empty()) {
      model_path = a;
    } else {
      paths.push_back(a);
    }
  }
  if (model_path.empty()) fail("no model file given (see tern embed --help)");
  if (!output.empty() && !ends_with(output, ".npy") && !ends_with(output, ".jsonl"))
    fail(output, ": output must end in .npy or .jsonl");

  auto model = Model::load(model_path, options);
  std::vector<Input> inputs;
  if (model->is_text_model()) {
    if (!paths.empty())
      fail(paths[0], ": ", model->architecture(), " is a text model: give texts with --text or --text-file");
    for (size_t i = 0; i < texts.size(); ++i) inputs.push_back({"text " + std::to_string(i + 1), texts[i].text});
    for (const auto& f : text_files) add_text_file(f, inputs);
  } else {
    if (saw_text || !text_files.empty())
      fail(model->architecture(), " is an image model: give image files or directories, not texts");
    for (const auto& p : paths) add_path(p, inputs);
  }
  if (inputs.empty()) fail("nothing to embed: no inputs given");

  // Embed batch by batch; with --keep-going a failing batch is retried input by input.
  std::vector<Embedding> results;
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::string>> failures;
  Progress progress(inputs.size(), !quiet);
  auto run = [&](size_t b, size_t n) {
    if (model->is_text_model()) {
      std::vector<std::string> batch;
      for (size_t i = b; i < b + n; ++i) batch.push_back(inputs[i].text);
      try {
        return model->embed_texts(batch, opts);
      } catch (const Error& e) {
        if (n == 1) fail(inputs[b].name, ": ", e.what());
        throw;
      }
    }
    std::vector<std::string> batch;
    for (size_t i = b; i < b + n; ++i) batch.push_back(inputs[i].name);
    return model->embed_image_files(batch, opts);
  };
  const size_t bs = static_cast<size_t>(opts.batch);
  for (size_t b = 0; b < inputs.size(); b += bs) {
    const size_t n = std::min(bs, inputs.size() - b);
    try {
      auto embs = run(b, n);
      for (size_t i = 0; i < n; ++i) {
        results.push_back(std::move(embs[i]));
        names.push_back(inputs[b + i].name);
      }
    } catch (const Error& e) {
      if (!keep_going) {
        progress.clear();
        if (n == 1 || model->is_image_model()) throw;
        // Name the failing text precisely.
        for (size_t i = b; i < b + n; ++i) run(i, 1);
        throw;
      }
      for (size_t i = b; i < b + n; ++i) {
        try {
          auto one = run(i, 1);
          results.push_back(std::move(one[0]));
          names.push_back(inputs[i].name);
        } catch (const Error& e1) {
          failures.emplace_back(inputs[i].name, e1.what());
        }
      }
    }
    progress.advance(n);
  }
  progress.clear();

  if (!results.empty()) {
    if (ends_with(output, ".npy")) {
      const auto& s0 = results[0].shape;
      std::vector<int64_t> shape;
      const bool same = std::all_of(results.begin(), results.end(), [&](const Embedding& e) { return e.shape == s0; });
      if (results.size() == 1 && s0.size() == 2) {
        shape = s0;  // one unpooled text: [T, D]
      } else if (same) {
        shape = {static_cast<int64_t>(results.size())};
        shape.insert(shape.end(), s0.begin(), s0.end());
      } else {
        fail(output, ": the outputs have different numbers of tokens (ragged); write .jsonl or use "
             "--pooling cls|mean");
      }
      std::vector<float> all;
      for (const auto& e : results) all.insert(all.end(), e.values.begin(), e.values.end());
      write_npy_f32(output, all.data(), shape);
    } else {
      std::ostringstream os;
      for (size_t i = 0; i < results.size(); ++i) json_line(os, names[i], results[i]);
      if (output.empty()) {
        std::fwrite(os.str().data(), 1, os.str().size(), stdout);
        std::fflush(stdout);
      } else {
        write_file_atomic(output, os.str());
      }
    }
  }
  for (const auto& [name, why] : failures) std::fprintf(stderr, "tern embed: failed: %s\n", why.c_str());
  if (!failures.empty()) {
    std::fprintf(stderr, "tern embed: %zu of %zu inputs failed%s\n", failures.size(), inputs.size(),
                 results.empty() ? "; nothing written" : "");
    return 1;
  }
  if (!output.empty())
    std::fprintf(stderr, "tern embed: wrote %zu embeddings to %s\n", results.size(), output.c_str());
  return 0;
}

}  // namespace tern::cli
