// Hugging Face DistilBertModel (last_hidden_state) on Tern's kernels. Tensor names: docs/FORMAT.md.
#include "models/distilbert.hpp"

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
  BertConfig cfg;
  transformer::TextEncoder encoder;
  std::unique_ptr<WordPieceTokenizer> tokenizer;
};

DistilBert::DistilBert(const WeightFile& file, Isa isa) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = parse_config(file);
  const BertConfig& c = m.cfg;
  m.encoder = transformer::TextEncoder(
      file, isa, "distilbert",
      {{c.dim, c.n_heads, c.hidden_dim}, c.vocab_size, c.max_positions, 0, c.n_layers, c.eps});
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
  if (req.logits) fail("--logits applies to image models only");
  const int64_t blocks = req.layer == ForwardRequest::kFinal ? m.cfg.n_layers : req.layer;
  // the real tokens, packed (the first alone after the last block when only it is read)
  const auto h = m.encoder.run(par, tb, blocks, req.pool == PoolMode::cls);
  return token_output(transformer::TextEncoder::padded(h, tb.seq_len, m.cfg.dim), h.lengths.data(),
                      req, 0);
}

}  // namespace tern
