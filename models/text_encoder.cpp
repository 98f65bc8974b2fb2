#include "models/text_encoder.hpp"

#include <cstring>

#include "engine/core/error.hpp"

namespace tern::transformer {

TextEncoder::TextEncoder(const WeightFile& file, Isa isa, const std::string& arch,
                         const TextEncoderShape& s)
    : isa_(isa), arch_(arch), shape_(s) {
  const int64_t D = s.dims.dim;
  word_ = file.get("embeddings.word", {s.vocab, D});
  position_ = file.get("embeddings.position", {s.positions, D});
  if (s.types > 0) {
    const Tensor types = file.get("embeddings.token_type", {s.types, D});
    token_type0_ = Tensor({D});
    std::memcpy(token_type0_.f32(), types.f32(), sizeof(float) * D);
  }
  embed_norm_ = load_norm(file, "embeddings.norm", D, s.eps);
  for (int64_t i = 0; i < s.layers; ++i)
    layers_.push_back(
        load_encoder_layer(file, isa, "layers." + std::to_string(i) + ".", s.dims, s.eps));
  if (file.has("layers." + std::to_string(s.layers) + ".attn.qkv.weight"))
    fail(file.path(), ": ", arch, " config says ", s.layers, " layers but the file has more");
}

TextEncoder::Packed TextEncoder::run(Parallel* par, const TokenBatch& tb, int64_t blocks,
                                     bool cls_only) const {
  const int64_t D = shape_.dims.dim, batch = tb.n, seq_len = tb.seq_len;
  const int32_t* ids = tb.ids;
  if (batch < 0 || seq_len < 0) fail(arch_, ": negative batch or sequence length");
  if (seq_len > shape_.positions)
    fail(arch_, ": sequence length ", seq_len, " exceeds max_position_embeddings ",
         shape_.positions);
  Packed p;
  p.lengths.assign(static_cast<size_t>(batch), static_cast<int32_t>(seq_len));
  for (int64_t b = 0; b < batch; ++b) {
    if (tb.lengths) p.lengths[b] = tb.lengths[b];
    if (p.lengths[b] < 0 || p.lengths[b] > seq_len)
      fail(arch_, ": length ", p.lengths[b], " of sequence ", b, " is outside [0, ", seq_len, "]");
    for (int64_t t = 0; t < p.lengths[b]; ++t) {
      const int32_t id = ids[b * seq_len + t];
      if (id < 0 || id >= shape_.vocab)
        fail(arch_, ": token id ", id, " at sequence ", b, " position ", t,
             " is outside the vocabulary [0, ", shape_.vocab, ")");
    }
  }
  // Only the real tokens are computed: sequence b is rows [offsets[b], offsets[b+1]) of x.
  p.offsets.assign(static_cast<size_t>(batch + 1), 0);
  for (int64_t b = 0; b < batch; ++b) p.offsets[b + 1] = p.offsets[b] + p.lengths[b];
  const int64_t rows = p.offsets[batch];
  if (rows == 0) return p;
  p.x.resize(static_cast<size_t>(rows * D));
  float* x = p.x.data();

  // x [rows, D] = word[ids] + position[t] (+ token_type[0])
  const float* word = word_.f32();
  const float* pos = position_.f32();
  const float* type0 = shape_.types > 0 ? token_type0_.f32() : nullptr;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < p.lengths[b]; ++t) {
      const float* w = word + int64_t{ids[b * seq_len + t]} * D;
      const float* ps = pos + t * D;
      float* xr = x + (p.offsets[b] + t) * D;
      if (type0)
        for (int64_t i = 0; i < D; ++i) xr[i] = w[i] + ps[i] + type0[i];
      else
        for (int64_t i = 0; i < D; ++i) xr[i] = w[i] + ps[i];
    }
  // x = LayerNorm(x), eps from the config
  layer_norm(isa_, par, embed_norm_, rows, D, x, x);

  // post-norm blocks (up to the requested one): x = LN(x + Attn(x)); x = LN(x + FFN(x))
  EncoderScratch scratch(rows, shape_.dims);
  const EncoderInput in{batch, seq_len, nullptr, p.offsets.data()};
  const std::vector<int64_t> first(static_cast<size_t>(batch), 0);
  for (int64_t i = 0; i < blocks; ++i)
    post_norm_layer(isa_, par, layers_[i], shape_.dims, in, x, scratch,
                    cls_only && i + 1 == blocks ? first.data() : nullptr);
  return p;
}

Tensor TextEncoder::padded(const Packed& p, int64_t seq_len, int64_t D) {
  const int64_t batch = static_cast<int64_t>(p.lengths.size());
  Tensor out({batch, seq_len, D});
  float* o = out.f32();
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = p.lengths[b];
    if (len)
      std::memcpy(o + b * seq_len * D, p.x.data() + p.offsets[b] * D, sizeof(float) * len * D);
    std::memset(o + (b * seq_len + len) * D, 0, sizeof(float) * (seq_len - len) * D);
  }
  return out;
}

}  // namespace tern::transformer
