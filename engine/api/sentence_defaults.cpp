#include "engine/api/sentence_defaults.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/core/error.hpp"

namespace tern {

namespace {

using Json = nlohmann::json;

struct Reader {
  const Json& j;
  std::string where;  // "PATH: embedding metadata"

  const Json& at(const char* key) const {
    if (!j.contains(key)) fail(where, ": \"", key, "\" is missing");
    return j.at(key);
  }
  bool boolean(const char* key) const {
    const Json& v = at(key);
    if (!v.is_boolean()) fail(where, ": \"", key, "\" must be true or false");
    return v.get<bool>();
  }
  int64_t integer(const Json& v, const std::string& key, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      fail(where, ": \"", key, "\" must be an integer in [", lo, ", ", hi, "]");
    return v.get<int64_t>();
  }
  std::string string(const Json& v, const std::string& key) const {
    if (!v.is_string()) fail(where, ": \"", key, "\" must be a string");
    return v.get<std::string>();
  }
};

}  // namespace

std::unique_ptr<SentenceDefaults> SentenceDefaults::load(const WeightFile& file, int64_t hidden,
                                                         int max_length_limit) {
  if (!file.has_metadata("embedding")) return nullptr;
  const std::string where = file.path() + ": embedding metadata";
  Json j;
  try {
    j = Json::parse(file.metadata("embedding"));
  } catch (const Json::exception& e) {
    fail(where, " is not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(where, " must be a JSON object");
  const Reader r{j, where};
  auto d = std::make_unique<SentenceDefaults>();
  d->pooling = r.string(r.at("pooling"), "pooling");
  if (d->pooling != "cls" && d->pooling != "mean" && d->pooling != "max" &&
      d->pooling != "mean_sqrt_len")
    fail(where, ": \"pooling\" is '", d->pooling, "', expected cls, mean, max or mean_sqrt_len");
  d->include_prompt = r.boolean("include_prompt");
  d->normalize = r.boolean("normalize");
  d->max_length =
      static_cast<int>(r.integer(r.at("max_length"), "max_length", 2, max_length_limit));

  const Json& dense = r.at("dense");
  if (!dense.is_array()) fail(where, ": \"dense\" must be a list");
  int64_t width = hidden;
  for (size_t k = 0; k < dense.size(); ++k) {
    const std::string key = "dense[" + std::to_string(k) + "]";
    const Json& e = dense[k];
    if (!e.is_object()) fail(where, ": \"", key, "\" must be an object");
    const Reader er{e, where + " " + key};
    SentenceDense layer;
    layer.in = er.integer(er.at("in"), "in", 1, 1 << 20);
    layer.out = er.integer(er.at("out"), "out", 1, 1 << 20);
    if (layer.in != width)
      fail(where, ": ", key, " takes ", layer.in, " inputs but ",
           k == 0 ? "the encoder gives " : "the previous layer gives ", width);
    const std::string act = er.string(er.at("activation"), "activation");
    if (act != "tanh" && act != "identity")
      fail(where, ": ", key, " activation '", act, "', expected tanh or identity");
    layer.tanh = act == "tanh";
    const std::string prefix = er.string(er.at("prefix"), "prefix");
    layer.weight = file.get(prefix + ".weight", {layer.out, layer.in});
    if (er.boolean("bias")) layer.bias = file.get(prefix + ".bias", {layer.out});
    width = layer.out;
    d->dense.push_back(std::move(layer));
  }
  d->dim = width;
  if (j.contains("dim") && r.integer(j.at("dim"), "dim", 1, 1 << 20) != width)
    fail(where, ": \"dim\" is ", j.at("dim").get<int64_t>(), " but the dense layers give ", width);

  if (j.contains("prompts")) {
    const Json& p = j.at("prompts");
    if (!p.is_object()) fail(where, ": \"prompts\" must map names to strings");
    for (const auto& [name, text] : p.items()) d->prompts[name] = r.string(text, "prompts." + name);
  }
  if (j.contains("default_prompt") && !j.at("default_prompt").is_null()) {
    d->default_prompt = r.string(j.at("default_prompt"), "default_prompt");
    if (!d->prompts.count(d->default_prompt))
      fail(where, ": \"default_prompt\" '", d->default_prompt, "' is not one of the prompts");
  }
  return d;
}

Tensor SentenceDefaults::apply_dense(const float* x, int64_t n) const {
  int64_t width = dense.empty() ? dim : dense.front().in;
  std::vector<double> cur(x, x + n * width), next;
  for (const SentenceDense& l : dense) {
    next.assign(static_cast<size_t>(n * l.out), 0.0);
    const float* w = l.weight.f32();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t o = 0; o < l.out; ++o) {
        double acc = l.bias.empty() ? 0.0 : l.bias.f32()[o];
        const float* wr = w + o * l.in;
        const double* xr = cur.data() + i * l.in;
        for (int64_t c = 0; c < l.in; ++c) acc += wr[c] * xr[c];
        next[i * l.out + o] = l.tanh ? std::tanh(acc) : acc;
      }
    cur.swap(next);
    width = l.out;
  }
  Tensor y({n, width});
  for (int64_t i = 0; i < n * width; ++i) y.f32()[i] = static_cast<float>(cur[i]);
  return y;
}

const std::string& SentenceDefaults::prompt(const std::string& name) const {
  const auto it = prompts.find(name);
  if (it == prompts.end()) {
    std::string names;
    for (const auto& [k, v] : prompts) names += (names.empty() ? "" : ", ") + k;
    fail("prompt '", name, "' is not in the model's prompts (",
         names.empty() ? "it has none; use --prompt-text" : names, ")");
  }
  return it->second;
}

}  // namespace tern
