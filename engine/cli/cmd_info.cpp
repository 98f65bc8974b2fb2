// `tern info`: what a weight file holds (header only; tensor data is not read unless asked).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "engine/cli/commands.hpp"
#include "engine/frontend/args.hpp"
#include "engine/frontend/output.hpp"
#include "engine/frontend/text.hpp"
#include "tern/tern.hpp"

namespace tern::cli {

namespace {

const char kHelp[] =
    "usage: tern info MODEL.tern [--json] [--tensors] [--tensor NAME]\n"
    "       tern info --cpu\n"
    "\n"
    "Describes a .tern weight file after validating it: format version, architecture, config,\n"
    "preprocessing profile (image models) or tokenizer and vocabulary size (text models), tensor\n"
    "and parameter counts, storage dtypes, file size and what it was converted from; and, from the\n"
    "loaded model, what it embeds (images, texts), its width and default pooling, and the layers\n"
    "`tern embed --layer` accepts (or why the model cannot be loaded).\n"
    "\n"
    "  --json          one JSON object on stdout instead of text (includes the tensor table)\n"
    "  --tensors       list every tensor: name, dtype, shape, data offset\n"
    "  --tensor NAME   print that tensor's values as float32 (BF16 widened) in JSON; non-finite\n"
    "                  values are the strings \"NaN\", \"Infinity\", \"-Infinity\"\n"
    "  --cpu           CPU features and the instruction set the kernels will use\n";

// Metadata values are untrusted text: check the nesting depth with the (iterative) SAX parser
// before building a DOM, whose copies, destructor and dump() recurse.
struct DepthCheck : nlohmann::json_sax<nlohmann::json> {
  int depth = 0, max_depth = 0;
  bool too_deep = false;
  bool enter() {
    max_depth = std::max(max_depth, ++depth);
    if (depth > 32) too_deep = true;
    return !too_deep;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return enter(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return enter(); }
  bool end_array() override { return --depth, true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

// The value as JSON when it is JSON of sane depth, otherwise as a plain string.
nlohmann::json json_or_string(const std::string& text) {
  DepthCheck check;
  if (!nlohmann::json::sax_parse(text, &check) || check.too_deep) return text;
  return nlohmann::json::parse(text, nullptr, false);
}

std::string dump(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

size_t count_lines(const std::string& text) {
  if (text.empty()) return 0;
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return text.back() == '\n' ? n : n + 1;
}

std::string with_commas(uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string json_number(float v) {
  if (std::isnan(v)) return "\"NaN\"";
  if (std::isinf(v)) return v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

const FileTensor& find_tensor(const FileInfo& w, const std::string& name) {
  for (const FileTensor& t : w.tensors)
    if (t.name == name) return t;
  throw Error(w.path + ": no tensor named '" + name + "'");
}

int print_tensor(const FileInfo& w, const std::string& name) {
  const std::vector<float> v = read_tensor_f32(w.path, name);  // names an absent tensor
  const FileTensor& info = find_tensor(w, name);
  std::string out =
      dump(nlohmann::json{{"name", name}, {"dtype", info.dtype}, {"shape", info.shape}});
  out.pop_back();
  out += ",\"values\":[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += json_number(v[i]);
  }
  out += "]}\n";
  frontend::write_stdout(out);
  return 0;
}

struct Summary {
  uint64_t parameters = 0;
  std::set<std::string> dtypes;
};

Summary summarize(const FileInfo& w) {
  Summary s;
  for (const FileTensor& t : w.tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);  // validated at open
    s.parameters += n;
    s.dtypes.insert(t.dtype);
  }
  return s;
}

// The registry's line about the file's architecture (its default output), or "" when unknown.
std::string description(const FileInfo& w) {
  for (const ArchitectureInfo& a : architectures())
    if (a.name == w.architecture) return a.description;
  return "";
}

std::string meta(const FileInfo& w, const std::string& key) {
  const std::string* v = w.find(key);
  return v ? *v : std::string();
}

// What the loaded model offers (inputs, width, default pooling, layers), or why it cannot load.
struct ModelSummary {
  std::vector<std::string> modalities, layers;
  int64_t dim = 0;
  std::string pooling, error;
};

ModelSummary summarize_model(const std::string& path) {
  ModelSummary m;
  try {
    Options o;
    o.threads = 1;
    const auto model = Model::load(path, o);
    if (model->is_image_model()) m.modalities.push_back("image");
    if (model->is_text_model()) m.modalities.push_back("text");
    m.layers = model->layers();
    m.dim = model->dim();
    m.pooling = pooling_name(model->default_pooling());
  } catch (const Error& e) {
    m.error = e.what();
  }
  return m;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

nlohmann::json to_json(const FileInfo& w, const ModelSummary& m) {
  const Summary s = summarize(w);
  nlohmann::json j;
  j["path"] = w.path;
  j["file_size"] = w.file_size;
  j["format"] = meta(w, "format");
  j["format_version"] = w.format_version;
  j["architecture"] = w.architecture;
  if (const std::string d = description(w); !d.empty()) j["description"] = d;
  if (m.error.empty()) {
    j["model"] = {{"modalities", m.modalities},
                  {"dim", m.dim},
                  {"default_pooling", m.pooling},
                  {"layers", m.layers}};
  } else {
    j["model_error"] = m.error;
  }
  for (const char* key : {"config", "preprocess", "tokenizer", "embedding", "source"})
    if (w.find(key)) j[key] = json_or_string(*w.find(key));
  if (w.find("vocab")) j["vocab_size"] = count_lines(*w.find("vocab"));
  j["tensor_count"] = w.tensors.size();
  j["parameter_count"] = s.parameters;
  j["dtypes"] = s.dtypes;
  nlohmann::json other = nlohmann::json::object();
  for (const auto& [key, value] : w.metadata) {
    if (j.contains(key) || key == "vocab") continue;
    other[key] = value;
  }
  j["other_metadata"] = other;
  nlohmann::json tensors = nlohmann::json::array();
  for (const FileTensor& t : w.tensors)
    tensors.push_back({{"name", t.name},
                       {"dtype", t.dtype},
                       {"shape", t.shape},
                       {"offset", t.offset},
                       {"bytes", t.bytes}});
  j["tensors"] = tensors;
  return j;
}

// One line per field; names and metadata are untrusted: printable() keeps each on its line.
std::string text_summary(const FileInfo& w, const ModelSummary& m, bool list_tensors) {
  using frontend::printable;
  const Summary s = summarize(w);
  std::string dtypes;
  for (const std::string& d : s.dtypes) dtypes += (dtypes.empty() ? "" : ", ") + d;
  std::string out;
  out += "file          " + printable(w.path) + " (" + with_commas(w.file_size) + " bytes)\n";
  out += "format        tern, version " + std::to_string(w.format_version) + "\n";
  out += "architecture  " + printable(w.architecture) + "\n";
  if (const std::string d = description(w); !d.empty()) out += "about         " + d + "\n";
  if (m.error.empty()) {
    out += "embeds        " + join(m.modalities) + ": " + std::to_string(m.dim) +
           "-d, default pooling " + m.pooling + "\n";
    out += "layers        " + join(m.layers) + " (--layer; the default is the model's usual output)\n";
  } else {
    out += "model         cannot be loaded: " + printable(m.error) + "\n";
  }
  out += "tensors       " + std::to_string(w.tensors.size()) + " (" +
         (dtypes.empty() ? "none" : dtypes) + "), " + with_commas(s.parameters) + " parameters\n";
  for (const char* key : {"preprocess", "tokenizer", "embedding"})  // embedding: ST defaults
    if (w.find(key))
      out += std::string(key) + std::string(14 - std::string(key).size(), ' ') +
             dump(json_or_string(*w.find(key))) + "\n";
  if (w.find("vocab"))
    out += "vocab         " + with_commas(count_lines(*w.find("vocab"))) + " tokens\n";
  if (w.find("source")) out += "source        " + dump(json_or_string(*w.find("source"))) + "\n";
  if (w.find("config")) {
    const std::string config = dump(json_or_string(*w.find("config")), 2);
    std::string indented = "  ";
    for (char c : config) indented += c == '\n' ? std::string("\n  ") : std::string(1, c);
    out += "config\n" + indented + "\n";
  }
  if (list_tensors) {
    out += "tensor table (name, dtype, shape, data offset)\n";
    for (const FileTensor& t : w.tensors)
      out += "  " + printable(t.name) + "  " + t.dtype + "  " + shape_text(t.shape) + "  " +
             std::to_string(t.offset) + "\n";
  }
  return out;
}

}  // namespace

int cmd_info(const Args& args) {
  std::string path, tensor;
  bool json = false, list_tensors = false, cpu = false;
  frontend::ArgParser p(args, "tern info");
  while (p.next()) {
    if (p.is("-h", "--help")) {
      frontend::write_stdout(kHelp);
      return 0;
    } else if (p.is("--json")) {
      p.flag();
      json = true;
    } else if (p.is("--tensors")) {
      p.flag();
      list_tensors = true;
    } else if (p.is("--cpu")) {
      p.flag();
      cpu = true;
    } else if (p.is("--tensor")) {
      tensor = p.value();
    } else if (p.is_option()) {
      p.unknown();
    } else if (path.empty()) {
      path = p.arg();
    } else {
      throw Error("more than one weight file given ('" + path + "' and '" + p.arg() + "')");
    }
  }
  if (cpu) {
    if (!path.empty()) throw Error("--cpu takes no weight file");
    frontend::write_stdout(describe_cpu() + "\n");
    return 0;
  }
  if (path.empty()) throw Error("missing MODEL.tern (see tern info --help)");
  const FileInfo w = describe_file(path);
  if (!tensor.empty()) return print_tensor(w, tensor);
  const ModelSummary m = summarize_model(path);
  if (json) {
    frontend::write_stdout(dump(to_json(w, m), 2) + "\n");
  } else {
    frontend::write_stdout(text_summary(w, m, list_tensors));
  }
  return 0;
}

}  // namespace tern::cli
