// Tiling of self-attention over the per-ISA microkernels (attention_config.hpp).
#include "kernels/attention/attention.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "kernels/attention/attention_config.hpp"

namespace tern::attention {

const AttentionConfig& attention_config(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return attention_config_avx512();
    case Isa::avx2:
      return attention_config_avx2();
    case Isa::scalar:
      break;
  }
  return attention_config_scalar();
}

static int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

static int64_t key_length(const Params& p, int64_t b) {
  return p.key_lengths ? p.key_lengths[b] : p.seq_len;
}

static void check_params(const Params& p) {
  assert(p.batch >= 0 && p.seq_len >= 0 && p.heads >= 0 && p.head_dim >= 1);
  assert(p.ld_q >= p.heads * p.head_dim && p.ld_k >= p.heads * p.head_dim);
  assert(p.ld_v >= p.heads * p.head_dim && p.ld_out >= p.heads * p.head_dim);
  for (int64_t b = 0; b < p.batch; ++b)
    assert(key_length(p, b) >= 0 && key_length(p, b) <= p.seq_len);
  (void)p;
}

void attention(Isa isa, Parallel* par, const Params& p) {
  check_params(p);
  const int64_t B = p.batch, T = p.seq_len, H = p.heads, dh = p.head_dim;
  if (B == 0 || T == 0 || H == 0) return;
  const AttentionConfig& uk = attention_config(isa);
  const int64_t nr = uk.nr;
  const int64_t t_pad = round_up(T, nr), dh_pad = round_up(dh, nr);

  // Packed per (sequence, head): Kᵀ as [dh, t_pad] (keys along a row, the B operand of Q·Kᵀ) and
  // V as [T, dh_pad] (the B operand of P·V). Columns past the valid keys / head_dim are zero.
  const int64_t kt_size = dh * t_pad, v_size = T * dh_pad;
  std::unique_ptr<float[]> packed(new float[static_cast<size_t>(B * H * (kt_size + v_size))]);
  parallel_for(par, B * H, [&](int64_t task) {
    const int64_t b = task / H, h = task % H, L = key_length(p, b);
    float* kt = packed.get() + task * (kt_size + v_size);
    float* vp = kt + kt_size;
    const float* kb = p.k + b * p.seq_stride + h * dh;
    const float* vb = p.v + b * p.seq_stride + h * dh;
    const int64_t l_pad = round_up(L, nr);
    for (int64_t d = 0; d < dh; ++d) {
      float* row = kt + d * t_pad;
      for (int64_t j = 0; j < L; ++j) row[j] = kb[j * p.ld_k + d];
      for (int64_t j = L; j < l_pad; ++j) row[j] = 0.f;
    }
    for (int64_t j = 0; j < L; ++j) {
      std::memcpy(vp + j * dh_pad, vb + j * p.ld_v, sizeof(float) * dh);
      for (int64_t d = dh; d < dh_pad; ++d) vp[j * dh_pad + d] = 0.f;
    }
  });

  const int64_t q_blocks = (T + kQueryBlock - 1) / kQueryBlock;
  parallel_for(par, B * H * q_blocks, [&](int64_t task) {
    const int64_t qb = task % q_blocks, bh = task / q_blocks;
    const int64_t b = bh / H, h = bh % H, L = key_length(p, b);
    const int64_t q0 = qb * kQueryBlock, rows = std::min(kQueryBlock, T - q0);
    float* out = p.out + b * p.out_seq_stride + q0 * p.ld_out + h * dh;
    if (L == 0) {
      for (int64_t r = 0; r < rows; ++r) std::memset(out + r * p.ld_out, 0, sizeof(float) * dh);
      return;
    }
    const float* q = p.q + b * p.seq_stride + q0 * p.ld_q + h * dh;
    const float* kt = packed.get() + bh * (kt_size + v_size);
    const float* vp = kt + kt_size;

    // Per-thread tiles: scores [rows, kKeyTile], output accumulator [rows, dh_pad], row stats.
    thread_local std::vector<float> scratch;
    const size_t need = static_cast<size_t>(kQueryBlock * (kKeyTile + dh_pad + 3));
    if (scratch.size() < need) scratch.resize(need);
    float* s = scratch.data();
    float* o = s + kQueryBlock * kKeyTile;
    float* m = o + kQueryBlock * dh_pad;
    float* l = m + kQueryBlock;
    float* corr = l + kQueryBlock;
    for (int64_t r = 0; r < rows; ++r) {
      m[r] = -std::numeric_limits<float>::infinity();
      l[r] = 0.f;
    }
    // Causal: the block's last query (q0 + rows - 1) sees keys up to itself; no key tile past it.
    const int64_t key_end = p.causal ? std::min(L, q0 + rows) : L;
    for (int64_t j0 = 0; j0 < key_end; j0 += kKeyTile) {
      const int64_t valid = std::min(kKeyTile, key_end - j0), n = round_up(valid, nr);
      // s[rows, n] = q[rows, dh] · Kᵀ[dh, j0 : j0 + n]
      uk.gemm(rows, n, dh, q, p.ld_q, kt + j0, t_pad, s, kKeyTile, nullptr);
      for (int64_t r = 0; r < rows; ++r) {
        // Causal: query q0 + r sees keys j0 .. q0 + r of this tile. Every query sees key 0 (in
        // the first tile), so m and l are set before a tile where it sees none: there its scores
        // are zeroed and its accumulator kept (corr = 1).
        const int64_t row_valid = p.causal ? std::min(valid, q0 + r + 1 - j0) : valid;
        float* sr = s + r * kKeyTile;
        if (row_valid <= 0) {
          std::memset(sr, 0, sizeof(float) * n);
          corr[r] = 1.f;
          continue;
        }
        corr[r] = uk.softmax_row(sr, n, row_valid, p.scale, m + r, l + r);
      }
      // o[rows, dh_pad] = corr ⊙ o + p[rows, valid] · V[j0 : j0 + valid, dh_pad]
      uk.gemm(rows, dh_pad, valid, s, kKeyTile, vp + j0 * dh_pad, dh_pad, o, dh_pad,
              j0 == 0 ? nullptr : corr);
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = 1.f / l[r];
      for (int64_t d = 0; d < dh; ++d) out[r * p.ld_out + d] = o[r * dh_pad + d] * inv;
    }
  });
}

void attention_reference(const Params& p) {
  const int64_t dh = p.head_dim;
  std::vector<double> sc(static_cast<size_t>(p.seq_len)), acc(static_cast<size_t>(dh));
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t L = key_length(p, b);
    for (int64_t h = 0; h < p.heads; ++h)
      for (int64_t t = 0; t < p.seq_len; ++t) {
        float* out = p.out + b * p.out_seq_stride + t * p.ld_out + h * dh;
        if (L == 0) {
          for (int64_t d = 0; d < dh; ++d) out[d] = 0.f;
          continue;
        }
        const float* q = p.q + b * p.seq_stride + t * p.ld_q + h * dh;
        const int64_t keys = p.causal ? std::min(L, t + 1) : L;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < keys; ++j) {
          const float* k = p.k + b * p.seq_stride + j * p.ld_k + h * dh;
          double dot = 0;
          for (int64_t d = 0; d < dh; ++d) dot += double(q[d]) * double(k[d]);
          sc[j] = dot * p.scale;
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < keys; ++j) sum += (sc[j] = std::exp(sc[j] - mx));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < keys; ++j) {
          const float* v = p.v + b * p.seq_stride + j * p.ld_v + h * dh;
          for (int64_t d = 0; d < dh; ++d) acc[d] += sc[j] * double(v[d]);
        }
        for (int64_t d = 0; d < dh; ++d) out[d] = static_cast<float>(acc[d] / sum);
      }
  }
}

}  // namespace tern::attention
