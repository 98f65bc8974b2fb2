// Hugging Face BertModel on Tern's kernels. Tensor names and config: docs/FORMAT.md, "bert".
#include "models/bert.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "models/common.hpp"
#include "models/config.hpp"
#include "models/text_encoder.hpp"

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
  BertConfig cfg;
  transformer::TextEncoder encoder;
  Tensor pooler_w, pooler_b;  // [H, H], [H] (with --keep-head)
  std::unique_ptr<WordPieceTokenizer> tokenizer;
};

Bert::Bert(const WeightFile& file, Isa isa) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = parse_config(file);
  const BertConfig& c = m.cfg;
  m.encoder = transformer::TextEncoder(file, isa, "bert",
                                       {{c.hidden, c.heads, c.intermediate},
                                        c.vocab_size,
                                        c.max_positions,
                                        c.type_vocab,
                                        c.layers,
                                        c.eps});
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
  const int64_t H = c.hidden;
  if (req.logits && !c.pooler) fail("--logits needs the pooler: export the model with --keep-head");
  const int64_t blocks = req.layer == ForwardRequest::kFinal ? c.layers : req.layer;
  // the real tokens, packed (the first alone after the last block when only it is read)
  const auto h = m.encoder.run(par, tb, blocks, req.logits || req.pool == PoolMode::cls);
  if (req.logits) {
    // HF pooler_output: tanh(W · h[CLS] + b), summed in double (one row per text: cheap)
    ForwardOutput po;
    po.kind = ForwardOutput::Kind::pooled;
    po.values = Tensor({tb.n, H});
    const float* w = m.pooler_w.f32();
    for (int64_t b = 0; b < tb.n; ++b) {
      const float* cls = h.x.data() + h.offsets[b] * H;
      float* y = po.values.f32() + b * H;
      for (int64_t j = 0; j < H; ++j) {
        double acc = m.pooler_b.f32()[j];
        for (int64_t i = 0; i < H; ++i) acc += double(w[j * H + i]) * cls[i];
        y[j] = static_cast<float>(std::tanh(acc));
      }
    }
    return po;
  }
  return token_output(transformer::TextEncoder::padded(h, tb.seq_len, H), h.lengths.data(), req, 0);
}

}  // namespace tern
