// `tern info`: what a weight file holds (header only; tensor data is not read unless asked).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "engine/cli/commands.hpp"
#include "engine/core/cpu.hpp"
#include "engine/core/error.hpp"
#include "engine/core/weights.hpp"

namespace tern::cli {

namespace {

const char kHelp[] =
    "usage: tern info MODEL.tern [--json] [--tensors] [--tensor NAME]\n"
    "       tern info --cpu\n"
    "\n"
    "Describes a .tern weight file after validating it: format version, architecture, config,\n"
    "preprocessing profile (image models) or tokenizer and vocabulary size (text models), tensor\n"
    "and parameter counts, storage dtypes, file size and what it was converted from.\n"
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

int print_tensor(const WeightFile& w, const std::string& name) {
  const TensorInfo& info = w.info(name);
  const Tensor t = w.get(name, info.shape);
  std::string out =
      dump(nlohmann::json{{"name", name}, {"dtype", dtype_name(info.dtype)}, {"shape", info.shape}});
  out.pop_back();
  out += ",\"values\":[";
  const float* v = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (i) out += ',';
    out += json_number(v[i]);
  }
  out += "]}\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

struct Summary {
  uint64_t parameters = 0;
  std::set<std::string> dtypes;
};

Summary summarize(const WeightFile& w) {
  Summary s;
  for (const TensorInfo& t : w.tensors()) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);  // validated at open
    s.parameters += n;
    s.dtypes.insert(dtype_name(t.dtype));
  }
  return s;
}

nlohmann::json to_json(const WeightFile& w) {
  const Summary s = summarize(w);
  nlohmann::json j;
  j["path"] = w.path();
  j["file_size"] = w.file_size();
  j["format"] = w.metadata("format");
  j["format_version"] = w.format_version();
  j["architecture"] = w.architecture();
  for (const char* key : {"config", "preprocess", "tokenizer", "embedding", "source"})
    if (w.has_metadata(key)) j[key] = json_or_string(w.metadata(key));
  if (w.has_metadata("vocab")) j["vocab_size"] = count_lines(w.metadata("vocab"));
  j["tensor_count"] = w.tensors().size();
  j["parameter_count"] = s.parameters;
  j["dtypes"] = s.dtypes;
  nlohmann::json other = nlohmann::json::object();
  for (const auto& [key, value] : w.all_metadata()) {
    if (j.contains(key) || key == "vocab") continue;
    other[key] = value;
  }
  j["other_metadata"] = other;
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorInfo& t : w.tensors())
    tensors.push_back({{"name", t.name},
                       {"dtype", dtype_name(t.dtype)},
                       {"shape", t.shape},
                       {"offset", t.begin},
                       {"bytes", t.end - t.begin}});
  j["tensors"] = tensors;
  return j;
}

void print_text(const WeightFile& w, bool list_tensors) {
  const Summary s = summarize(w);
  std::string dtypes;
  for (const std::string& d : s.dtypes) dtypes += (dtypes.empty() ? "" : ", ") + d;
  std::printf("file          %s (%s bytes)\n", w.path().c_str(), with_commas(w.file_size()).c_str());
  std::printf("format        tern, version %d\n", w.format_version());
  std::printf("architecture  %s\n", w.architecture().c_str());
  std::printf("tensors       %zu (%s), %s parameters\n", w.tensors().size(),
              dtypes.empty() ? "none" : dtypes.c_str(), with_commas(s.parameters).c_str());
  if (w.has_metadata("preprocess"))
    std::printf("preprocess    %s\n", dump(json_or_string(w.metadata("preprocess"))).c_str());
  if (w.has_metadata("tokenizer"))
    std::printf("tokenizer     %s\n", dump(json_or_string(w.metadata("tokenizer"))).c_str());
  if (w.has_metadata("vocab"))
    std::printf("vocab         %s tokens\n", with_commas(count_lines(w.metadata("vocab"))).c_str());
  if (w.has_metadata("embedding"))  // sentence-transformers defaults (docs/FORMAT.md)
    std::printf("embedding     %s\n", dump(json_or_string(w.metadata("embedding"))).c_str());
  if (w.has_metadata("source"))
    std::printf("source        %s\n", dump(json_or_string(w.metadata("source"))).c_str());
  if (w.has_metadata("config")) {
    std::string config = dump(json_or_string(w.metadata("config")), 2);
    std::string indented = "  ";
    for (char c : config) indented += c == '\n' ? std::string("\n  ") : std::string(1, c);
    std::printf("config\n%s\n", indented.c_str());
  }
  if (list_tensors) {
    std::printf("tensor table (name, dtype, shape, data offset)\n");
    for (const TensorInfo& t : w.tensors())
      std::printf("  %s  %s  %s  %llu\n", t.name.c_str(), dtype_name(t.dtype),
                  shape_to_string(t.shape).c_str(), static_cast<unsigned long long>(t.begin));
  }
}

}  // namespace

int cmd_info(const Args& args) {
  std::string path, tensor;
  bool json = false, list_tensors = false, cpu = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--tensors") {
      list_tensors = true;
    } else if (a == "--cpu") {
      cpu = true;
    } else if (a == "--tensor") {
      if (i + 1 == args.size()) fail("--tensor needs a tensor name");
      tensor = args[++i];
    } else if (!a.empty() && a[0] == '-') {
      fail("unknown option '", a, "' (see tern info --help)");
    } else if (path.empty()) {
      path = a;
    } else {
      fail("more than one weight file given ('", path, "' and '", a, "')");
    }
  }
  if (cpu) {
    if (!path.empty()) fail("--cpu takes no weight file");
    std::printf("%s\n", describe_cpu().c_str());
    return 0;
  }
  if (path.empty()) fail("missing MODEL.tern (see tern info --help)");
  const auto w = WeightFile::open(path);
  if (!tensor.empty()) return print_tensor(*w, tensor);
  if (json) {
    std::printf("%s\n", dump(to_json(*w), 2).c_str());
  } else {
    print_text(*w, list_tensors);
  }
  return 0;
}

}  // namespace tern::cli
