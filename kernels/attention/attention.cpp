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

namespace {

// Where sequence b's rows start in q/k/v (qkv = true) or out, its token count and valid keys.
int64_t rows_of(const Params& p, int64_t b) {
  return p.offsets ? p.offsets[b + 1] - p.offsets[b] : p.seq_len;
}
int64_t key_length(const Params& p, int64_t b) {
  if (p.offsets) return rows_of(p, b);
  return p.key_lengths ? p.key_lengths[b] : p.seq_len;
}
int64_t in_base(const Params& p, int64_t b, int64_t ld) {
  return p.offsets ? p.offsets[b] * ld : b * p.seq_stride;
}
int64_t out_base(const Params& p, int64_t b) {
  return p.offsets ? p.offsets[b] * p.ld_out : b * p.out_seq_stride;
}

void check_params(const Params& p) {
  assert(p.batch >= 0 && p.seq_len >= 0 && p.heads >= 0 && p.head_dim >= 1);
  assert(p.ld_q >= p.heads * p.head_dim && p.ld_k >= p.heads * p.head_dim);
  assert(p.ld_v >= p.heads * p.head_dim && p.ld_out >= p.heads * p.head_dim);
  for (int64_t b = 0; b < p.batch; ++b) {
    assert(rows_of(p, b) >= 0);
    assert(key_length(p, b) >= 0 && key_length(p, b) <= rows_of(p, b));
    assert(!p.query_rows || rows_of(p, b) == 0 ||
           (p.query_rows[b] >= 0 && p.query_rows[b] < rows_of(p, b)));
  }
  (void)p;
}

// The query rows [first, first + count) of sequence b that a call computes: blocks of kQueryBlock
// rows, or the one row query_rows[b] picks.
struct QueryRange {
  int64_t first, count;
};
QueryRange query_range(const Params& p, int64_t b, int64_t qb) {
  if (p.query_rows) return {p.query_rows[b], 1};
  const int64_t q0 = qb * kQueryBlock;
  return {q0, std::min(kQueryBlock, rows_of(p, b) - q0)};
}

// Grow-only scratch of the thread that calls it (never shrinks: its size follows the largest
// model this thread runs).
float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

struct Head {
  int64_t t_pad, dh_pad;  // Kᵀ is [dh, t_pad]; V is [T, dh_pad] when packed
  // V is read in place (rows of p.v, stride ld_v) when its rows need no padding: dh is a multiple
  // of the microkernel's column granularity (head_dim 64 and 32 are).
  bool v_in_place;
  size_t size(int64_t dh, int64_t T) const {
    return size_t(dh * t_pad + (v_in_place ? 0 : T * dh_pad));
  }
};

// Packs K of (b, h) as Kᵀ [dh, t_pad] (keys along a row: the B operand of Q·Kᵀ; the ISA's
// transpose) and, unless it is read in place, V as [T, dh_pad] (the B operand of P·V) at dst;
// columns past the valid keys / head_dim are zero.
void pack_head(const AttentionConfig& uk, const Params& p, const Head& g, int64_t b, int64_t h,
               float* dst) {
  const int64_t dh = p.head_dim, L = key_length(p, b), l_pad = round_up(L, uk.nr);
  float* kt = dst;
  const float* kb = p.k + in_base(p, b, p.ld_k) + h * dh;
  uk.transpose(L, dh, kb, p.ld_k, kt, g.t_pad);
  for (int64_t d = 0; d < dh; ++d)
    for (int64_t j = L; j < l_pad; ++j) kt[d * g.t_pad + j] = 0.f;
  if (g.v_in_place) return;
  float* vp = kt + dh * g.t_pad;
  const float* vb = p.v + in_base(p, b, p.ld_v) + h * dh;
  for (int64_t j = 0; j < L; ++j) {
    std::memcpy(vp + j * g.dh_pad, vb + j * p.ld_v, sizeof(float) * dh);
    for (int64_t d = dh; d < g.dh_pad; ++d) vp[j * g.dh_pad + d] = 0.f;
  }
}

// Query block qb of (b, h) against its packed Kᵀ / V.
void query_block(const AttentionConfig& uk, const Params& p, const Head& g, int64_t b, int64_t h,
                 int64_t qb, const float* packed) {
  const int64_t dh = p.head_dim, L = key_length(p, b);
  const auto [q0, rows] = query_range(p, b, qb);
  const int64_t nr = uk.nr, dh_pad = g.dh_pad, t_pad = g.t_pad;
  float* out = p.out + out_base(p, b) + q0 * p.ld_out + h * dh;
  if (L == 0) {
    for (int64_t r = 0; r < rows; ++r) std::memset(out + r * p.ld_out, 0, sizeof(float) * dh);
    return;
  }
  const float* q = p.q + in_base(p, b, p.ld_q) + q0 * p.ld_q + h * dh;
  const float* kt = packed;
  const float* vp = g.v_in_place ? p.v + in_base(p, b, p.ld_v) + h * dh : kt + dh * t_pad;
  const int64_t ldv = g.v_in_place ? p.ld_v : dh_pad;

  // Per-thread tiles: scores [rows, key_tile], output accumulator [rows, dh_pad], row stats.
  const int64_t key_tile = uk.key_tile;
  thread_local std::vector<float> t_tiles;
  float* s = scratch(t_tiles, size_t(kQueryBlock * (key_tile + dh_pad + 3)));
  float* o = s + kQueryBlock * key_tile;
  float* m = o + kQueryBlock * dh_pad;
  float* l = m + kQueryBlock;
  float* corr = l + kQueryBlock;
  for (int64_t r = 0; r < rows; ++r) {
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.f;
  }
  // Causal: the block's last query (q0 + rows - 1) sees keys up to itself; no key tile past it.
  const int64_t key_end = p.causal ? std::min(L, q0 + rows) : L;
  for (int64_t j0 = 0; j0 < key_end; j0 += key_tile) {
    const int64_t valid = std::min(key_tile, key_end - j0), n = round_up(valid, nr);
    // s[rows, n] = q[rows, dh] · Kᵀ[dh, j0 : j0 + n]
    uk.gemm(rows, n, dh, q, p.ld_q, kt + j0, t_pad, s, key_tile, nullptr);
    for (int64_t r = 0; r < rows; ++r) {
      // Causal: query q0 + r sees keys j0 .. q0 + r of this tile. Every query sees key 0 (in
      // the first tile), so m and l are set before a tile where it sees none: there its scores
      // are zeroed and its accumulator kept (corr = 1).
      const int64_t row_valid = p.causal ? std::min(valid, q0 + r + 1 - j0) : valid;
      float* sr = s + r * key_tile;
      if (row_valid <= 0) {
        std::memset(sr, 0, sizeof(float) * n);
        corr[r] = 1.f;
        continue;
      }
      corr[r] = uk.softmax_row(sr, n, row_valid, p.scale, m + r, l + r);
    }
    // o[rows, dh_pad] = corr ⊙ o + p[rows, valid] · V[j0 : j0 + valid, dh_pad]
    uk.gemm(rows, dh_pad, valid, s, key_tile, vp + j0 * ldv, ldv, o, dh_pad,
            j0 == 0 ? nullptr : corr);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = 1.f / l[r];
    for (int64_t d = 0; d < dh; ++d) out[r * p.ld_out + d] = o[r * dh_pad + d] * inv;
  }
}

int64_t query_blocks(const Params& p, int64_t T) {
  if (p.query_rows) return T > 0 ? 1 : 0;
  return (T + kQueryBlock - 1) / kQueryBlock;
}

}  // namespace

void attention(Isa isa, Parallel* par, const Params& p) {
  check_params(p);
  const int64_t B = p.batch, H = p.heads, dh = p.head_dim;
  if (B == 0 || H == 0) return;
  const AttentionConfig& uk = attention_config(isa);
  const int64_t nr = uk.nr, dh_pad = round_up(dh, nr);
  auto head = [&](int64_t b) { return Head{round_up(rows_of(p, b), nr), dh_pad, dh_pad == dh}; };
  int64_t max_qb = 0, max_t = 0;
  for (int64_t b = 0; b < B; ++b) {
    max_qb = std::max(max_qb, query_blocks(p, rows_of(p, b)));
    max_t = std::max(max_t, rows_of(p, b));
  }
  if (max_t == 0) return;
  const int64_t threads = par ? par->num_threads() : 1;

  // One pass, tasks (sequence, head): each packs its head into its own thread's scratch and runs
  // all its query blocks. One fork/join per call, no shared buffer: used whenever there are
  // enough heads to go round (or only one query block per head, where the two-pass split would
  // not have more tasks anyway).
  if (max_qb == 1 || B * H >= 4 * threads) {
    parallel_for(par, B * H, [&](int64_t task) {
      const int64_t b = task / H, h = task % H, T = rows_of(p, b);
      if (T == 0) return;
      const Head g = head(b);
      thread_local std::vector<float> t_head;
      float* packed = scratch(t_head, g.size(dh, T));
      if (key_length(p, b) > 0) pack_head(uk, p, g, b, h, packed);
      for (int64_t qb = 0; qb < query_blocks(p, T); ++qb) query_block(uk, p, g, b, h, qb, packed);
    });
    return;
  }

  // Two passes (few heads, long sequences): pack every head into the caller's scratch, then
  // tasks (sequence, head, query block). Both give the same bits: each query block is computed
  // by the same operations from the same packed values either way.
  thread_local std::vector<int64_t> t_index;  // [0, B]: packed offsets, then [B+1, 2B+2): tasks
  t_index.assign(size_t(2 * B + 2), 0);
  int64_t* pack_at = t_index.data();
  int64_t* task_at = pack_at + B + 1;
  for (int64_t b = 0; b < B; ++b) {
    pack_at[b + 1] = pack_at[b] + int64_t(head(b).size(dh, rows_of(p, b))) * H;
    task_at[b + 1] = task_at[b] + query_blocks(p, rows_of(p, b)) * H;
  }
  thread_local std::vector<float> t_packed;
  float* packed = scratch(t_packed, size_t(pack_at[B]));
  parallel_for(par, B * H, [&](int64_t task) {
    const int64_t b = task / H, h = task % H, T = rows_of(p, b);
    if (T == 0 || key_length(p, b) == 0) return;
    const Head g = head(b);
    pack_head(uk, p, g, b, h, packed + pack_at[b] + h * int64_t(g.size(dh, T)));
  });
  parallel_for(par, task_at[B], [&](int64_t task) {
    const int64_t b = std::upper_bound(task_at, task_at + B + 1, task) - task_at - 1;
    const int64_t T = rows_of(p, b), nqb = query_blocks(p, T), local = task - task_at[b];
    const int64_t h = local / nqb, qb = local % nqb;
    const Head g = head(b);
    query_block(uk, p, g, b, h, qb, packed + pack_at[b] + h * int64_t(g.size(dh, T)));
  });
}

void attention_reference(const Params& p) {
  const int64_t dh = p.head_dim;
  std::vector<double> sc(static_cast<size_t>(p.seq_len)), acc(static_cast<size_t>(dh));
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t L = key_length(p, b);
    if (size_t(rows_of(p, b)) > sc.size()) sc.resize(size_t(rows_of(p, b)));
    for (int64_t h = 0; h < p.heads; ++h)
      for (int64_t t = 0; t < rows_of(p, b); ++t) {
        if (p.query_rows && t != p.query_rows[b]) continue;
        float* out = p.out + out_base(p, b) + t * p.ld_out + h * dh;
        if (L == 0) {
          for (int64_t d = 0; d < dh; ++d) out[d] = 0.f;
          continue;
        }
        const float* q = p.q + in_base(p, b, p.ld_q) + t * p.ld_q + h * dh;
        const int64_t keys = p.causal ? std::min(L, t + 1) : L;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < keys; ++j) {
          const float* k = p.k + in_base(p, b, p.ld_k) + j * p.ld_k + h * dh;
          double dot = 0;
          for (int64_t d = 0; d < dh; ++d) dot += double(q[d]) * double(k[d]);
          sc[j] = dot * p.scale;
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < keys; ++j) sum += (sc[j] = std::exp(sc[j] - mx));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < keys; ++j) {
          const float* v = p.v + in_base(p, b, p.ld_v) + j * p.ld_v + h * dh;
          for (int64_t d = 0; d < dh; ++d) acc[d] += sc[j] * double(v[d]);
        }
        for (int64_t d = 0; d < dh; ++d) out[d] = static_cast<float>(acc[d] / sum);
      }
  }
}

}  // namespace tern::attention
