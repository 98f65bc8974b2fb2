// Hugging Face BertModel on Tern's kernels. Tensor names and config: docs/FORMAT.md, "bert".
#include "models/bert.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "models/common.hpp"
#include "models/config.hpp"
#include "models/transformer_encoder.hpp"

namespace tern {

namespace {

struct BertConfig {
  int64_t vocab_size = 0, hidden = 0, heads = 0, layers = 0, intermediate = 0, max_positions = 0,
          type_vocab = 0;
  float eps = 1e-12f;
  bool pooler = false;
};

BertConfig parse_config(const WeightFile& file) {
  const ModelConfig j(file, "bert");
  BertConfig c;
  c.vocab_size = j.integer("vocab_size", 1, 1 << 24);
  c.hidden = j.integer("hidden_size", 1, 1 << 16);
  c.heads = j.integer("num_attention_heads", 1, 1024);
  c.layers = j.integer("num_hidden_layers", 1, 1024);
  c.intermediate = j.integer("intermediate_size", 1, 1 << 18);
  c.max_positions = j.integer("max_position_embeddings", 1, 1 << 20);
  c.type_vocab = j.integer("type_vocab_size", 1, 1 << 16);
  c.eps = j.number("layer_norm_eps", 0, 1, c.eps);
  j.choice("hidden_act", {"gelu"}, "gelu");
  if (c.hidden % c.heads != 0)
    j.invalid("hidden_size " + std::to_string(c.hidden) + " is not a multiple of " +
              "num_attention_heads " + std::to_string(c.heads));
  c.pooler = file.has("pooler.weight");  // exported with --keep-head
  return c;
}

}  // namespace

struct Bert::Impl {
  Isa isa;
  BertConfig cfg;
  transformer::EncoderDims dims;
  Tensor word, position, token_type0;  // [vocab, H], [max_positions, H], [H] (token type 0)
  transformer::Norm embed_norm;
  std::vector<transformer::EncoderLayer> layers;
  Tensor pooler_w, pooler_b;  // [H, H], [H] (with --keep-head)
  std::unique_ptr<WordPieceTokenizer> tokenizer;
};

Bert::Bert(const WeightFile& file, Isa isa) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.isa = isa;
  m.cfg = parse_config(file);
  const BertConfig& c = m.cfg;
  m.dims = {c.hidden, c.heads, c.intermediate};
  m.word = file.get("embeddings.word", {c.vocab_size, c.hidden});
  m.position = file.get("embeddings.position", {c.max_positions, c.hidden});
  const Tensor types = file.get("embeddings.token_type", {c.type_vocab, c.hidden});
  m.token_type0 = Tensor({c.hidden});
  std::memcpy(m.token_type0.f32(), types.f32(), sizeof(float) * c.hidden);
  m.embed_norm = transformer::load_norm(file, "embeddings.norm", c.hidden, c.eps);
  for (int64_t i = 0; i < c.layers; ++i)
    m.layers.push_back(transformer::load_encoder_layer(
        file, isa, "layers." + std::to_string(i) + ".", m.dims, c.eps));
  if (file.has("layers." + std::to_string(c.layers) + ".attn.qkv.weight"))
    fail(file.path(), ": bert config says num_hidden_layers = ", c.layers,
         " but the file has more layers");
  if (c.pooler) {
    m.pooler_w = file.get("pooler.weight", {c.hidden, c.hidden});
    m.pooler_b = file.get("pooler.bias", {c.hidden});
  }
  m.tokenizer = load_wordpiece(file);
}

Bert::~Bert() = default;

int64_t Bert::dim() const {
  return impl_->cfg.hidden;
}
bool Bert::has_head() const {
  return impl_->cfg.pooler;
}
int64_t Bert::max_positions() const {
  return impl_->cfg.max_positions;
}
std::vector<std::string> Bert::layers() const {
  return numbered_layers(impl_->cfg.layers);
}
const TextTokenizer* Bert::tokenizer() const {
  return impl_->tokenizer.get();
}

double Bert::forward_flops(int64_t batch, int64_t seq_len, int64_t, int64_t) const {
  const BertConfig& c = impl_->cfg;
  return 2.0 * c.layers * encoder_block_macs(double(seq_len), c.hidden, c.intermediate) * batch;
}

ForwardOutput Bert::forward_tokens(Parallel* par, const TokenBatch& tb,
                                   const ForwardRequest& req) const {
  const Impl& m = *impl_;
  const BertConfig& c = m.cfg;
  const int64_t H = c.hidden, batch = tb.n, seq_len = tb.seq_len;
  const int32_t* ids = tb.ids;
  if (req.logits && !c.pooler) fail("--logits needs the pooler: export the model with --keep-head");
  if (batch < 0 || seq_len < 0) fail("bert: negative batch or sequence length");
  if (seq_len > c.max_positions)
    fail("bert: sequence length ", seq_len, " exceeds max_position_embeddings ", c.max_positions);
  std::vector<int32_t> lens(static_cast<size_t>(batch), static_cast<int32_t>(seq_len));
  for (int64_t b = 0; b < batch; ++b) {
    if (tb.lengths) lens[b] = tb.lengths[b];
    if (lens[b] < 0 || lens[b] > seq_len)
      fail("bert: length ", lens[b], " of sequence ", b, " is outside [0, ", seq_len, "]");
    for (int64_t t = 0; t < lens[b]; ++t) {
      const int32_t id = ids[b * seq_len + t];
      if (id < 0 || id >= c.vocab_size)
        fail("bert: token id ", id, " at sequence ", b, " position ", t,
             " is outside the vocabulary [0, ", c.vocab_size, ")");
    }
  }
  // Only the real tokens are computed: sequence b is rows [offsets[b], offsets[b+1]) of x.
  std::vector<int64_t> offsets(static_cast<size_t>(batch + 1), 0);
  for (int64_t b = 0; b < batch; ++b) offsets[b + 1] = offsets[b] + lens[b];
  const int64_t rows = offsets[batch];
  Tensor out({batch, seq_len, H});
  if (rows == 0) return token_output(std::move(out), lens.data(), req, 0);
  std::vector<float> packed(static_cast<size_t>(rows * H));
  float* x = packed.data();

  // x [rows, H] = word[ids] + position[t] + token_type[0]
  const float* word = m.word.f32();
  const float* pos = m.position.f32();
  const float* type0 = m.token_type0.f32();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < lens[b]; ++t) {
      const float* w = word + int64_t{ids[b * seq_len + t]} * H;
      const float* p = pos + t * H;
      float* xr = x + (offsets[b] + t) * H;
      for (int64_t i = 0; i < H; ++i) xr[i] = w[i] + p[i] + type0[i];
    }
  // x = LayerNorm(x), eps from the config
  transformer::layer_norm(m.isa, par, m.embed_norm, rows, H, x, x);

  // post-norm blocks (all, or up to the requested one): x = LN(x + Attn(x)); x = LN(x + FFN(x))
  const int64_t blocks = req.layer == ForwardRequest::kFinal ? c.layers : req.layer;
  transformer::EncoderScratch scratch(rows, m.dims);
  const transformer::EncoderInput in{batch, seq_len, nullptr, offsets.data()};
  for (int64_t i = 0; i < blocks; ++i)
    transformer::post_norm_layer(m.isa, par, m.layers[i], m.dims, in, x, scratch);

  // out [batch, seq_len, H]: sequence b's tokens, rows past its length zero
  float* o = out.f32();
  for (int64_t b = 0; b < batch; ++b) {
    std::memcpy(o + b * seq_len * H, x + offsets[b] * H, sizeof(float) * lens[b] * H);
    std::memset(o + (b * seq_len + lens[b]) * H, 0, sizeof(float) * (seq_len - lens[b]) * H);
  }
  if (req.logits) {
    // HF pooler_output: tanh(W · h[CLS] + b), summed in double (one row per text: cheap)
    ForwardOutput po;
    po.kind = ForwardOutput::Kind::pooled;
    po.values = Tensor({batch, H});
    const float* w = m.pooler_w.f32();
    for (int64_t b = 0; b < batch; ++b) {
      const float* cls = x + offsets[b] * H;
      float* y = po.values.f32() + b * H;
      for (int64_t j = 0; j < H; ++j) {
        double acc = m.pooler_b.f32()[j];
        for (int64_t i = 0; i < H; ++i) acc += double(w[j * H + i]) * cls[i];
        y[j] = static_cast<float>(std::tanh(acc));
      }
    }
    return po;
  }
  return token_output(std::move(out), lens.data(), req, 0);
}

}  // namespace tern
