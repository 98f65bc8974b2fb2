#include "models/common.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/core/error.hpp"

namespace tern {

Tensor pool_tokens(const float* h, int64_t n, int64_t T, int64_t D, const int32_t* lengths,
                   PoolMode mode, int64_t skip, const std::vector<int32_t>& pool_from) {
  Tensor out({n, D});
  std::vector<double> acc(static_cast<size_t>(D));
  for (int64_t i = 0; i < n; ++i) {
    const float* x = h + i * T * D;
    float* y = out.f32() + i * D;
    const int64_t len = lengths ? lengths[i] : T;
    if (mode == PoolMode::cls) {
      std::memcpy(y, x, sizeof(float) * D);
      continue;
    }
    const int64_t first = std::min<int64_t>(len, skip + (pool_from.empty() ? 0 : pool_from[i]));
    if (mode == PoolMode::max) {
      for (int64_t c = 0; c < D; ++c)
        y[c] = first < len ? -std::numeric_limits<float>::infinity() : 0.f;
      for (int64_t t = first; t < len; ++t)
        for (int64_t c = 0; c < D; ++c) y[c] = std::max(y[c], x[t * D + c]);
      continue;
    }
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t t = first; t < len; ++t)
      for (int64_t c = 0; c < D; ++c) acc[c] += x[t * D + c];
    const double count = static_cast<double>(std::max<int64_t>(len - first, 1));
    const double div = mode == PoolMode::mean_sqrt_len ? std::sqrt(count) : count;
    for (int64_t c = 0; c < D; ++c) y[c] = static_cast<float>(acc[c] / div);
  }
  return out;
}

ForwardOutput token_output(Tensor h, const int32_t* lengths, const ForwardRequest& req,
                           int64_t skip) {
  const int64_t n = h.dim(0), T = h.dim(1), D = h.dim(2);
  ForwardOutput out;
  if (req.pool == PoolMode::none) {
    out.kind = ForwardOutput::Kind::tokens;
    out.lengths.assign(static_cast<size_t>(n), static_cast<int32_t>(T));
    if (lengths) out.lengths.assign(lengths, lengths + n);
    out.values = std::move(h);
    return out;
  }
  out.kind = ForwardOutput::Kind::pooled;
  out.values = pool_tokens(h.f32(), n, T, D, lengths, req.pool, skip, req.pool_from);
  return out;
}

std::vector<std::string> numbered_layers(int64_t blocks) {
  std::vector<std::string> names;
  for (int64_t k = 0; k <= blocks; ++k) names.push_back(std::to_string(k));
  return names;
}

void image_patches(Parallel* par, const float* img, int64_t N, int64_t S, int64_t P,
                   float* patches) {
  const int64_t G = S / P, K = 3 * P * P;
  parallel_for(par, N * G, [&](int64_t task) {
    const int64_t n = task / G, gy = task % G;
    for (int64_t gx = 0; gx < G; ++gx) {
      float* dst = patches + ((n * G + gy) * G + gx) * K;
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t py = 0; py < P; ++py)
          std::memcpy(dst + (ch * P + py) * P, img + ((n * 3 + ch) * S + gy * P + py) * S + gx * P,
                      sizeof(float) * P);
    }
  });
}

PreprocessConfig preprocess_from_file(const WeightFile& file, const char* default_profile) {
  return file.has_metadata("preprocess") ? PreprocessConfig::from_json(file.metadata("preprocess"))
                                         : PreprocessConfig::from_profile(default_profile);
}

std::unique_ptr<WordPieceTokenizer> load_wordpiece(const WeightFile& file) {
  return std::make_unique<WordPieceTokenizer>(
      file.metadata("vocab"), TokenizerConfig::from_json(file.metadata("tokenizer")));
}

double encoder_block_macs(double tokens, double dim, double ffn) {
  return tokens * (4 * dim * dim + 2 * dim * ffn) + 2 * tokens * tokens * dim;
}

}  // namespace tern
