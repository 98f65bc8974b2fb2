#pragma once
// The transpose that packs Kᵀ for the AVX2 and AVX-512 attention variants (contract:
// attention_config.hpp): 8×8 blocks through 256-bit registers, the edges one element at a time.
// An exact copy, so every variant gives the scalar one's bits. Internal linkage: one copy per
// translation unit.
#include <cstdint>

#include "kernels/simd/x86.hpp"

namespace tern::attention::impl {
namespace {

// dst[d·ldd + j] = src[j·lds + d] for j in [j0, rows), d in [d0, cols): the edges of the
// blocked form below, one element at a time.
inline void transpose_scalar(int64_t j0, int64_t rows, int64_t d0, int64_t cols, const float* src,
                             int64_t lds, float* dst, int64_t ldd) {
  for (int64_t d = d0; d < cols; ++d)
    for (int64_t j = j0; j < rows; ++j) dst[d * ldd + j] = src[j * lds + d];
}

// The same in 8×8 blocks through 256-bit registers (unpack, shuffle, then swap the 128-bit
// halves), the edges by transpose_scalar.
inline void transpose_8x8_blocks(int64_t rows, int64_t cols, const float* src, int64_t lds,
                                 float* dst, int64_t ldd) {
  const int64_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (int64_t j = 0; j < rows8; j += 8)
    for (int64_t d = 0; d < cols8; d += 8) {
      const float* s = src + j * lds + d;
      __m256 r[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * lds);
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int i = 0; i < 2; ++i) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      float* o = dst + d * ldd + j;
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(o + i * ldd, _mm256_permute2f128_ps(u[i], u[4 + i], 0x20));
        _mm256_storeu_ps(o + (i + 4) * ldd, _mm256_permute2f128_ps(u[i], u[4 + i], 0x31));
      }
    }
  transpose_scalar(rows8, rows, 0, cols8, src, lds, dst, ldd);  // the last rows % 8 keys
  transpose_scalar(0, rows, cols8, cols, src, lds, dst, ldd);   // the last cols % 8 channels
}

}  // namespace
}  // namespace tern::attention::impl
