// Hugging Face DistilBertModel (last_hidden_state) on Tern's kernels. Tensor names: docs/FORMAT.md.
#include "models/distilbert.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "models/config.hpp"
#include "models/common.hpp"
#include "models/transformer_encoder.hpp"

namespace tern {

namespace {

struct BertConfig {
  int64_t vocab_size = 0, dim = 0, n_heads = 0, n_layers = 0, hidden_dim = 0, max_positions = 0;
  float eps = 1e-12f;
};

BertConfig parse_config(const WeightFile& file) {
  const ModelConfig j(file, "distilbert");
  BertConfig c;
  c.vocab_size = j.integer("vocab_size", 1, 1 << 24);
  c.dim = j.integer("dim", 1, 1 << 16);
  c.n_heads = j.integer("n_heads", 1, 1024);
  c.n_layers = j.integer("n_layers", 1, 1024);
  c.hidden_dim = j.integer("hidden_dim", 1, 1 << 18);
  c.max_positions = j.integer("max_position_embeddings", 1, 1 << 20);
  if (c.dim % c.n_heads != 0)
    j.invalid("dim " + std::to_string(c.dim) + " is not a multiple of n_heads " +
              std::to_string(c.n_heads));
  c.eps = j.number("eps", 0, 1, c.eps);
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
  std::unique_ptr<WordPieceTokenizer> tokenizer;
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
  m.tokenizer = load_wordpiece(file);
}

DistilBert::~DistilBert() = default;

int64_t DistilBert::dim() const {
  return impl_->cfg.dim;
}
int64_t DistilBert::max_positions() const {
  return impl_->cfg.max_positions;
}
std::vector<std::string> DistilBert::layers() const {
  return numbered_layers(impl_->cfg.n_layers);
}
const TextTokenizer* DistilBert::tokenizer() const {
  return impl_->tokenizer.get();
}

double DistilBert::forward_flops(int64_t batch, int64_t seq_len, int64_t, int64_t) const {
  const BertConfig& c = impl_->cfg;
  return 2.0 * c.n_layers * encoder_block_macs(double(seq_len), c.dim, c.hidden_dim) * batch;
}

ForwardOutput DistilBert::forward_tokens(Parallel* par, const TokenBatch& tb,
                                         const ForwardRequest& req) const {
  const Impl& m = *impl_;
  const BertConfig& c = m.cfg;
  const int64_t D = c.dim, batch = tb.n, seq_len = tb.seq_len;
  const int32_t* ids = tb.ids;
  if (req.logits) fail("--logits applies to image models only");
  if (batch < 0 || seq_len < 0) fail("distilbert: negative batch or sequence length");
  if (seq_len > c.max_positions)
    fail("distilbert: sequence length ", seq_len, " exceeds max_position_embeddings ",
         c.max_positions);
  std::vector<int32_t> lens(static_cast<size_t>(batch), static_cast<int32_t>(seq_len));
  for (int64_t b = 0; b < batch; ++b) {
    if (tb.lengths) lens[b] = tb.lengths[b];
    if (lens[b] < 0 || lens[b] > seq_len)
      fail("distilbert: length ", lens[b], " of sequence ", b, " is outside [0, ", seq_len, "]");
    for (int64_t t = 0; t < lens[b]; ++t) {
      const int32_t id = ids[b * seq_len + t];
      if (id < 0 || id >= c.vocab_size)
        fail("distilbert: token id ", id, " at sequence ", b, " position ", t,
             " is outside the vocabulary [0, ", c.vocab_size, ")");
    }
  }
  // Only the real tokens are computed: sequence b is rows [offsets[b], offsets[b+1]) of x.
  std::vector<int64_t> offsets(static_cast<size_t>(batch + 1), 0);
  for (int64_t b = 0; b < batch; ++b) offsets[b + 1] = offsets[b] + lens[b];
  const int64_t rows = offsets[batch];
  Tensor out({batch, seq_len, D});
  if (rows == 0) return token_output(std::move(out), lens.data(), req, 0);
  std::vector<float> packed(static_cast<size_t>(rows * D));
  float* x = packed.data();

  // x [rows, D] = word[ids] + position[t]
  const float* word = m.word_embeddings.f32();
  const float* pos = m.position_embeddings.f32();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < lens[b]; ++t) {
      const float* w = word + int64_t{ids[b * seq_len + t]} * D;
      const float* p = pos + t * D;
      float* xr = x + (offsets[b] + t) * D;
      for (int64_t i = 0; i < D; ++i) xr[i] = w[i] + p[i];
    }
  // x = LayerNorm(x), eps from the config (1e-12)
  transformer::layer_norm(m.isa, par, m.embed_norm, rows, D, x, x);

  // post-norm blocks (all, or up to the requested one): x = LN(x + Attn(x)); x = LN(x + FFN(x))
  const int64_t blocks = req.layer == ForwardRequest::kFinal ? c.n_layers : req.layer;
  transformer::EncoderScratch scratch(rows, m.dims);
  const transformer::EncoderInput in{batch, seq_len, nullptr, offsets.data()};
  for (int64_t i = 0; i < blocks; ++i)
    transformer::post_norm_layer(m.isa, par, m.layers[i], m.dims, in, x, scratch);

  // out [batch, seq_len, D]: sequence b's tokens, rows past its length zero
  float* o = out.f32();
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(o + b * seq_len * D, x + offsets[b] * D, sizeof(float) * lens[b] * D);
    std::memset(o + (b * seq_len + lens[b]) * D, 0, sizeof(float) * (seq_len - lens[b]) * D);
  }
  return token_output(std::move(out), lens.data(), req, 0);
}

}  // namespace tern
