// Hugging Face DistilBertModel (last_hidden_state) on Tern's kernels. Tensor names: docs/FORMAT.md.
#include "models/distilbert.hpp"

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "models/transformer_encoder.hpp"

namespace tern {

namespace {

struct BertConfig {
  int64_t vocab_size = 0, dim = 0, n_heads = 0, n_layers = 0, hidden_dim = 0, max_positions = 0;
  float eps = 1e-12f;
};

int64_t config_int(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi,
                   const std::string& path) {
  if (!j.contains(key)) fail(path, ": distilbert config has no \"", key, "\"");
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    fail(path, ": distilbert config \"", key, "\" must be an integer in [", lo, ", ", hi, "]");
  return v.get<int64_t>();
}

BertConfig parse_config(const WeightFile& file) {
  const std::string& path = file.path();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file.metadata("config"));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": distilbert config is not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": distilbert config must be a JSON object");
  BertConfig c;
  c.vocab_size = config_int(j, "vocab_size", 1, 1 << 24, path);
  c.dim = config_int(j, "dim", 1, 1 << 16, path);
  c.n_heads = config_int(j, "n_heads", 1, 1024, path);
  c.n_layers = config_int(j, "n_layers", 1, 1024, path);
  c.hidden_dim = config_int(j, "hidden_dim", 1, 1 << 18, path);
  c.max_positions = config_int(j, "max_position_embeddings", 1, 1 << 20, path);
  if (c.dim % c.n_heads != 0)
    fail(path, ": distilbert config: dim ", c.dim, " is not a multiple of n_heads ", c.n_heads);
  if (j.contains("eps")) {
    const auto& e = j.at("eps");
    if (!e.is_number() || !(e.get<double>() > 0) || e.get<double>() > 1)
      fail(path, ": distilbert config \"eps\" must be a number in (0, 1]");
    c.eps = e.get<float>();
  }
  return c;
}

}  // namespace

struct DistilBert::Impl {
  Isa isa;
  BertConfig cfg;
  transformer::EncoderDims dims;
  Tensor word_embeddings;      // [vocab, D]
  Tensor position_embeddings;  // [max_positions, D]
  transformer::Norm embed_norm;
  std::vector<transformer::EncoderLayer> layers;
};

DistilBert::DistilBert(const WeightFile& file, Isa isa) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.isa = isa;
  m.cfg = parse_config(file);
  const BertConfig& c = m.cfg;
  m.dims = {c.dim, c.n_heads, c.hidden_dim};
  m.word_embeddings = file.get("embeddings.word", {c.vocab_size, c.dim});
  m.position_embeddings = file.get("embeddings.position", {c.max_positions, c.dim});
  m.embed_norm = transformer::load_norm(file, "embeddings.norm", c.dim, c.eps);
  for (int64_t i = 0; i < c.n_layers; ++i)
    m.layers.push_back(transformer::load_encoder_layer(
        file, isa, "layers." + std::to_string(i) + ".", m.dims, c.eps));
  if (file.has("layers." + std::to_string(c.n_layers) + ".attn.qkv.weight"))
    fail(file.path(), ": distilbert config says n_layers = ", c.n_layers,
         " but the file has more layers");
}

DistilBert::~DistilBert() = default;

int64_t DistilBert::hidden() const {
  return impl_->cfg.dim;
}
int64_t DistilBert::max_positions() const {
  return impl_->cfg.max_positions;
}

Tensor DistilBert::forward(Parallel* par, const int32_t* ids, int64_t batch, int64_t seq_len,
                           const int32_t* lengths) const {
  const Impl& m = *impl_;
  const BertConfig& c = m.cfg;
  const int64_t D = c.dim;
  if (batch < 0 || seq_len < 0) fail("distilbert: negative batch or sequence length");
  if (seq_len > c.max_positions)
    fail("distilbert: sequence length ", seq_len, " exceeds max_position_embeddings ",
         c.max_positions);
  std::vector<int32_t> lens(static_cast<size_t>(batch), static_cast<int32_t>(seq_len));
  for (int64_t b = 0; b < batch; ++b) {
    if (lengths) lens[b] = lengths[b];
    if (lens[b] < 0 || lens[b] > seq_len)
      fail("distilbert: length ", lens[b], " of sequence ", b, " is outside [0, ", seq_len, "]");
    for (int64_t t = 0; t < lens[b]; ++t) {
      const int32_t id = ids[b * seq_len + t];
      if (id < 0 || id >= c.vocab_size)
        fail("distilbert: token id ", id, " at sequence ", b, " position ", t,
             " is outside the vocabulary [0, ", c.vocab_size, ")");
    }
  }
  const int64_t rows = batch * seq_len;
  Tensor out({batch, seq_len, D});
  if (rows == 0) return out;
  float* x = out.f32();

  // x [B·T, D] = word[ids] + position[t]; padded rows stay 0 (ids there are ignored)
  const float* word = m.word_embeddings.f32();
  const float* pos = m.position_embeddings.f32();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < lens[b]; ++t) {
      const float* w = word + int64_t{ids[b * seq_len + t]} * D;
      const float* p = pos + t * D;
      float* xr = x + (b * seq_len + t) * D;
      for (int64_t i = 0; i < D; ++i) xr[i] = w[i] + p[i];
    }
  // x = LayerNorm(x), eps from the config (1e-12)
  transformer::layer_norm(m.isa, par, m.embed_norm, rows, D, x, x);

  // n_layers post-norm blocks: x = LN(x + Attn(x)); x = LN(x + FFN(x))
  transformer::EncoderScratch scratch(rows, m.dims);
  const transformer::EncoderInput in{batch, seq_len, lens.data()};
  for (const auto& layer : m.layers)
    transformer::post_norm_layer(m.isa, par, layer, m.dims, in, x, scratch);

  // rows past each length are zero
  for (int64_t b = 0; b < batch; ++b)
    std::memset(x + (b * seq_len + lens[b]) * D, 0, sizeof(float) * (seq_len - lens[b]) * D);
  return out;
}

}  // namespace tern
