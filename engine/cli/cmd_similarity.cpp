// `tern similarity`: the cosine matrix of images and texts in a model's embedding space, and
// CLIP's zero-shot probabilities (--softmax).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/cli/commands.hpp"
#include "engine/cli/image_inputs.hpp"
#include "engine/cli/text_args.hpp"
#include "engine/frontend/args.hpp"
#include "engine/frontend/output.hpp"
#include "engine/frontend/text.hpp"
#include "tern/tern.hpp"

namespace tern::cli {
namespace {

const char kHelp[] =
    "usage: tern similarity MODEL.tern [IMAGE|DIR ...] [--text TEXT ...] [--text-file FILE]\n"
    "                       [--softmax] [--json] [--pooling P] [--threads N]\n"
    "\n"
    "Prints the cosine similarity of every query (row) to every candidate (column). A directory\n"
    "stands for the .jpg/.jpeg/.png files under it, recursively, sorted (as in tern embed).\n"
    "  - with texts: the images, then the texts, as queries against the texts (text-to-image\n"
    "    search reads a column, zero-shot classification a row);\n"
    "  - without texts: the images against the images.\n"
    "Any Tern model works: a CLIP file puts images and texts in one space; a text model (BERT)\n"
    "compares texts with texts, an image model images with images. Vectors are the model's\n"
    "default embedding (mean over tokens for models whose default is per token).\n"
    "\n"
    "  --softmax      CLIP zero-shot probabilities: softmax over the columns of\n"
    "                 logit_scale.exp() x cosine (needs a model with a logit scale: CLIP)\n"
    "  --json         one JSON object: {\"rows\": [...], \"columns\": [...], \"matrix\": [[...]]}\n"
    "  --pooling P    none is not allowed here; cls | mean | max | mean_sqrt_len (default: the\n"
    "                 model's)\n"
    "  --threads N    worker threads (default 0 = all cores)\n"
    "\n" TERN_TEXT_FILE_HELP;

std::string fixed(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", static_cast<double>(v));
  return buf;
}

}  // namespace

int cmd_similarity(const Args& args) {
  if (args.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  std::string model_path;
  std::vector<std::string> images;
  TextSources texts;
  bool softmax = false, json = false;
  Options options;
  EmbedOptions opts;
  frontend::ArgParser p(args, "tern similarity");
  while (p.next()) {
    if (p.is("-h", "--help")) {
      frontend::write_stdout(kHelp);
      return 0;
    } else if (p.is("--text")) {
      texts.add_texts(p.values());
    } else if (p.is("--text-file")) {
      texts.add_file(p.value());
    } else if (p.is("--softmax")) {
      p.flag();
      softmax = true;
    } else if (p.is("--json")) {
      p.flag();
      json = true;
    } else if (p.is("--pooling")) {
      opts.pooling = parse_pooling(p.value());
      if (opts.pooling == Pooling::none)
        throw Error("--pooling none: similarity compares one vector per input");
    } else if (p.is("--threads")) {
      options.threads = static_cast<int>(p.int_value(0, max_threads()));
    } else if (p.is_option()) {
      p.unknown();
    } else if (model_path.empty()) {
      model_path = p.arg();
    } else {
      images.push_back(p.arg());
    }
  }
  if (model_path.empty()) throw Error("no model file given (see tern similarity --help)");
  if (images.empty() && texts.empty())
    throw Error("nothing to compare: give images and/or --text / --text-file");
  texts.open(false);

  auto model = Model::load(model_path, options);
  if (opts.pooling == Pooling::model_default && model->default_pooling() == Pooling::none)
    opts.pooling = Pooling::mean;
  if (!images.empty() && !model->is_image_model())
    throw Error(frontend::printable(images[0]) + ": " + model->architecture() +
                " is a text model: give texts with --text");
  if (!texts.empty() && !model->is_text_model())
    throw Error(model->architecture() + " is an image model: it takes no texts");

  std::vector<std::string> image_names, text_names;
  std::vector<Embedding> image_embs, text_embs;
  if (!images.empty()) {
    std::vector<std::string> files;
    for (const auto& i : images) add_image_input(i, "tern similarity", files);
    image_embs = model->embed_image_files(files, opts);
    for (const auto& f : files) image_names.push_back(frontend::printable(f));
  }
  std::vector<std::string> text_values;
  for (TextSources::Item item; texts.next(&item);) {
    // a short --text shows itself; file lines and long texts their name
    const bool inline_text = item.name.rfind("text ", 0) == 0;
    text_names.push_back(inline_text && item.value.size() <= 40 ? frontend::printable(item.value)
                                                               : item.name);
    text_values.push_back(item.value);
  }
  if (!text_values.empty()) text_embs = model->embed_texts(text_values, opts);

  // rows: images then texts; columns: the texts, or the images when there are no texts
  std::vector<Embedding> rows = image_embs, cols = text_embs.empty() ? image_embs : text_embs;
  rows.insert(rows.end(), text_embs.begin(), text_embs.end());
  std::vector<std::string> row_names = image_names, col_names;
  row_names.insert(row_names.end(), text_names.begin(), text_names.end());
  col_names = text_names.empty() ? image_names : text_names;
  std::vector<float> m = cosine_matrix(rows, cols);
  if (softmax) {
    if (model->logit_scale() <= 0)
      throw Error("--softmax needs a model with a logit scale (CLIP); " + model->architecture() +
                  " has none");
    m = zero_shot_softmax(m, static_cast<int64_t>(cols.size()), model->logit_scale());
  }

  const size_t nc = cols.size();
  if (json) {
    nlohmann::json j;
    j["rows"] = row_names;
    j["columns"] = col_names;
    j["softmax"] = softmax;
    nlohmann::json mat = nlohmann::json::array();
    for (size_t r = 0; r < rows.size(); ++r)
      mat.push_back(std::vector<float>(m.begin() + r * nc, m.begin() + (r + 1) * nc));
    j["matrix"] = mat;
    frontend::write_stdout(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    return 0;
  }
  std::string out = softmax ? "# zero-shot probabilities (rows sum to 1)\n" : "# cosine similarity\n";
  out += "query";
  for (const auto& c : col_names) out += "\t" + c;
  out += "\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    out += row_names[r];
    for (size_t c = 0; c < nc; ++c) out += "\t" + fixed(m[r * nc + c]);
    out += "\n";
  }
  frontend::write_stdout(out);
  return 0;
}

}  // namespace tern::cli
