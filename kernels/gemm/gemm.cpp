// The GEMM operator: B packing, cache blocking, threading over tiles of C, dispatch to
// the per-ISA microkernels (gemm_scalar.cpp, gemm_avx2.cpp, gemm_avx512.cpp). Layouts and the
// microkernel contract: gemm_config.hpp.

#include "kernels/gemm/gemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/gemm/gemm_config.hpp"
#include "kernels/memory.hpp"

namespace tern::gemm {

const GemmConfig& gemm_config(Isa isa) {
  switch (isa) {
    case Isa::avx512: return gemm_config_avx512();
    case Isa::avx2: return gemm_config_avx2();
    case Isa::scalar: break;
  }
  return gemm_config_scalar();
}

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Packed weights of 2 MiB and more sit on huge pages (kernels/memory.hpp).
std::shared_ptr<float> alloc_floats(size_t n) {
  const AlignedBlock b = allocate_streamed(n * sizeof(float));
  if (b.data == nullptr) throw std::bad_alloc();
  return std::shared_ptr<float>(static_cast<float*>(b.data), std::free);
}

// Grow-only per-thread scratch, released when it gets unusually large.
class Scratch {
 public:
  float* get(size_t n) {
    if (n > cap_ || (cap_ > kKeepLimit && n <= kKeepLimit)) {
      buf_.reset();
      buf_ = alloc_floats(n);
      cap_ = n;
    }
    return buf_.get();
  }

 private:
  static constexpr size_t kKeepLimit = size_t{4} << 20;  // floats (16 MiB)
  std::shared_ptr<float> buf_;
  size_t cap_ = 0;
};

thread_local Scratch t_b_scratch;

// K is summed in nkb blocks of kc (the last one shorter); they depend on K and the ISA only.
struct KBlocks {
  int64_t nkb, kc;
};
KBlocks k_blocks(const GemmConfig& cfg, int64_t K) {
  const int64_t nkb = std::max<int64_t>(1, ceil_div(K, cfg.kc));
  return {nkb, ceil_div(K, nkb)};
}

// Where the kc × NR slice of panel p for K block kb starts in the packed B layout
// [K block][panel][k in block][NR] (gemm_config.hpp).
size_t slice_offset(int nr_tile, int64_t K, int64_t N, KBlocks kb_, int64_t p, int64_t kb) {
  const int64_t k0 = kb * kb_.kc, kcb = std::min(kb_.kc, K - k0);
  return static_cast<size_t>(k0 * round_up(N, nr_tile) + p * kcb * nr_tile);
}

// Panels [p0, p1) of B into the packed layout.
void pack_b_panels(const GemmConfig& cfg, const float* b, int64_t K, int64_t N, int64_t ldb,
                   bool b_is_nk, float* dst, int64_t p0, int64_t p1) {
  const int nr_tile = cfg.nr;
  const KBlocks kbs = k_blocks(cfg, K);
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * nr_tile, nn = std::min<int64_t>(nr_tile, N - n0);
    for (int64_t kb = 0; kb < kbs.nkb; ++kb) {
      const int64_t k0 = kb * kbs.kc, k1 = std::min(K, k0 + kbs.kc);
      float* d = dst + slice_offset(nr_tile, K, N, kbs, p, kb) - k0 * nr_tile;  // row k at d + k·NR
      if (!b_is_nk) {
        for (int64_t k = k0; k < k1; ++k) {
          float* row = d + k * nr_tile;
          std::memcpy(row, b + k * ldb + n0, nn * sizeof(float));
          std::fill(row + nn, row + nr_tile, 0.f);
        }
      } else {
        if (nn < nr_tile)
          for (int64_t k = k0; k < k1; ++k)
            std::fill(d + k * nr_tile + nn, d + (k + 1) * nr_tile, 0.f);
        for (int64_t j = 0; j < nn; ++j) {
          const float* src = b + (n0 + j) * ldb;
          for (int64_t k = k0; k < k1; ++k) d[k * nr_tile + j] = src[k];
        }
      }
    }
  }
}

// The L2 of one core on the machines Tern is tuned for (Zen 3, Zen 5: 512 KiB, 1 MiB): B packed
// per call beyond it cannot stay in L2 between the passes over it.
constexpr int64_t kL2Bytes = int64_t{1} << 20;

struct Plan {
  KBlocks kbs;
  int64_t mt, nt;           // task tile
  int64_t tiles_m, tiles_n;
  bool stream_b;            // B's slices may come from L3 or memory: prefetch the next one
};

// Tiles for the threads. Any tiling gives the same bits (each element of C is the same sequence of
// multiply-adds over the same K blocks whatever tile it lands in), so the tiling may follow the
// thread count: about one tile per thread, halved across the columns while a tile has two column
// panels or more (each thread then streams its own part of B, the weights, and shares A, the
// smaller activations), else across the rows; none below kMinTaskFlops (threading a tiny GEMM
// costs more than it saves). Measured on Zen 5, 2 threads (tern_kernel_bench and the models):
// against 2 tiles per thread cut along the longer side, 128x2304x768 87.5% -> 95% of peak,
// 1024x768x768 90% -> 94%; DistilBERT 128 tokens 25.3 -> 24.2 ms, ViT-B/16 76.2 -> 75 ms.
// weight: B is a PackedB packed at load (gemm()), not B packed just now into scratch
// (gemm_unpacked()).
Plan make_plan(const GemmConfig& cfg, int threads, int64_t M, int64_t N, int64_t K, bool weight) {
  constexpr double kMinTaskFlops = 4e6;
  Plan p;
  p.kbs = k_blocks(cfg, K);
  p.mt = round_up(M, cfg.mr);
  p.nt = round_up(N, cfg.nr);
  const int64_t target = threads;
  auto tasks = [&] { return ceil_div(M, p.mt) * ceil_div(N, p.nt); };
  auto flops = [&](int64_t mt, int64_t nt) {
    return 2.0 * std::min(mt, M) * std::min(nt, N) * std::max<int64_t>(K, 1);
  };
  while (tasks() < target) {
    const bool split_n = p.nt >= 2 * cfg.nr || p.mt < 2 * cfg.mr;
    const int64_t mt = split_n ? p.mt : round_up(ceil_div(p.mt, 2), cfg.mr);
    const int64_t nt = split_n ? round_up(ceil_div(p.nt, 2), cfg.nr) : p.nt;
    if ((mt == p.mt && nt == p.nt) || flops(mt, nt) < kMinTaskFlops) break;
    p.mt = mt;
    p.nt = nt;
  }
  // A model's weights together are far beyond L3, so even a small one is cold when its layer
  // comes (a layer that calls the GEMM on the same block many times, a convolution at batch 8,
  // then fetches lines already in cache: ResNet50 batch 8 equal within noise); B packed now is
  // in cache unless beyond L2.
  p.stream_b = weight || round_up(N, cfg.nr) * K * int64_t{sizeof(float)} > kL2Bytes;
  p.tiles_m = ceil_div(M, p.mt);
  p.tiles_n = ceil_div(N, p.nt);
  return p;
}

// Loop nest of one task (rows [m0, m1) × columns [n0, n1) of C), as BLIS:
//   for each NC block of columns:    its kc × NC slice of packed B stays in L3
//     for each K block (kc):
//       for each block of mc rows:   the mc × kc block of A (read in place) stays in L2
//         for each NR panel:         its kc × NR slice of packed B stays in L1 ...
//           for each MR row panel:   ... while the microkernel streams the A rows past it
// The first K block starts from the residual (or zero), later ones from the partial sums in C; the
// last applies bias and activation.
void run_task(const GemmConfig& cfg, const Plan& plan, int64_t m0, int64_t m1, int64_t n0,
              int64_t n1, int64_t N, int64_t K, const float* A, int64_t lda, const float* bp,
              float* C, int64_t ldc, const Epilogue& ep) {
  const int64_t NR = cfg.nr, MR = cfg.mr;
  // Up to 4·MC rows stay one block, so B streams through once (measured better for the 128- and
  // 197-row GEMMs of the transformers); taller tasks go in MC-row blocks, small enough that the
  // block of A survives in L2 while B and C stream past it.
  const int64_t mc = m1 - m0 <= 4 * cfg.mc ? m1 - m0 : cfg.mc;
  for (int64_t jc = n0; jc < n1; jc += cfg.nc) {
    const int64_t jc1 = std::min(n1, jc + cfg.nc);
    for (int64_t kb = 0; kb < plan.kbs.nkb; ++kb) {
      const int64_t k0 = kb * plan.kbs.kc, kc = std::min(plan.kbs.kc, K - k0);
      const bool last = kb == plan.kbs.nkb - 1;
      const Activation act = last ? ep.act : Activation::none;
      for (int64_t ic = m0; ic < m1; ic += mc) {
        const int64_t ic1 = std::min(m1, ic + mc);
        // The block's rows in ceil(rows / MR) panels of even height (128 rows: 18 × 6 + 4 × 5,
        // not 21 × 6 + 2): a panel of one or two rows has too few FMA chains to keep the units
        // busy. Every row is summed the same way whatever its panel's height.
        const int64_t panels = ceil_div(ic1 - ic, MR), base = (ic1 - ic) / panels;
        const int64_t taller = (ic1 - ic) % panels;  // the first `taller` panels get base + 1 rows
        auto height = [&](int64_t i) { return base + (i < taller ? 1 : 0); };
        for (int64_t n = jc; n < jc1; n += NR) {
          const int64_t nr = std::min(NR, jc1 - n);
          const float* bslice = bp + slice_offset(cfg.nr, K, N, plan.kbs, n / NR, kb);
          const float* bias = last && ep.bias ? ep.bias + n : nullptr;
          // B that may be cold (a weight, read once per forward pass, or B packed now beyond
          // L2): the first row panel would meet each slice cold. Row panels spread evenly over
          // the block fetch the next column panel's slice (which follows this one in memory)
          // into L2 as they run, a line per step of k each, when there are enough of them to
          // cover it (AVX-512: 2, AVX2: 1). Measured on Zen 5, AVX-512: DistilBERT 128 tokens
          // batch 1, 1 thread 46.9 -> 44.4 ms (AVX2: 96.0 -> 88.7) with a line per 4 steps of k
          // over every panel; at one line per step the GEMMs of 16 rows fetch too: DistilBERT 16
          // tokens batch 1, 1 thread 8.3 -> 5.9 ms, 2 threads 4.8 -> 4.3 (AVX2: 19.0 -> 11.6).
          // Weights of 1 MiB and less (ResNet50's convolution blocks and Winograd planes) were
          // left out at first, as if they stayed in cache; they do not (the model's 94 MB of
          // weights, more with Winograd's, pass through a 32 MB L3 every forward pass), and
          // fetching them too measured ResNet50 batch 1, 1 thread 33.6 -> 32.6 ms, 2 threads
          // 19.4 -> 18.8 (alternating, 4 rounds each); batch 8 equal within this machine's noise
          // that day (1 thread 268 / 276 and 319 / 313 ms in two runs).
          const int64_t share = kc / 4 * 64, slice = kc * NR;  // floats: 4·⌊kc/4⌋ lines a call
          const int64_t fetchers = share > 0 ? ceil_div(slice, share) : 0;
          const bool fetch = plan.stream_b && n + NR < jc1 && fetchers > 0 && panels >= fetchers;
          const int64_t every = fetch ? panels / fetchers : 1;
          int64_t m = ic;
          for (int64_t i = 0; i < panels; m += height(i), ++i) {
            const int64_t rows = height(i);
            const float* pf = fetch && i % every == 0 && i / every < fetchers
                                  ? bslice + slice + i / every * share
                                  : nullptr;
            // The first column panel meets each A panel first (from L3 or memory): fetch the
            // next panel's rows while this one computes.
            if (n == jc && i + 1 < panels)
              for (int64_t r = m + rows; r < m + rows + height(i + 1); ++r)
                for (int64_t k = 0; k < kc; k += 64 / int64_t{sizeof(float)})
                  __builtin_prefetch(A + r * lda + k0 + k, 0, 3);
            float* c = C + m * ldc + n;
            const float* init = c;
            int64_t ldi = ldc;
            if (kb == 0) {
              init = ep.residual ? ep.residual + m * ep.ldr + n : nullptr;
              ldi = ep.ldr;
            }
            cfg.ukernel[rows - 1](kc, A + m * lda + k0, lda, bslice, c, ldc, nr, init, ldi, bias,
                                  act, pf);
          }
        }
      }
    }
  }
}

// Columns [c0, c1) of C (c0 a multiple of NR) from B packed with N columns.
void run_packed(const GemmConfig& cfg, Parallel* par, int64_t M, int64_t N, int64_t K,
                const float* A, int64_t lda, const float* bp, bool weight, float* C, int64_t ldc,
                const Epilogue& ep, int64_t c0, int64_t c1) {
  if (M <= 0 || c1 <= c0) return;
  const Plan plan = make_plan(cfg, par ? par->num_threads() : 1, M, c1 - c0, K, weight);
  parallel_for_2d(par, plan.tiles_m, plan.tiles_n, [&](int64_t ti, int64_t tj) {
    const int64_t m0 = ti * plan.mt, n0 = c0 + tj * plan.nt;
    run_task(cfg, plan, m0, std::min(M, m0 + plan.mt), n0, std::min(c1, n0 + plan.nt), N, K, A,
             lda, bp, C, ldc, ep);
  });
}

void check_pack_args(const float* b, int64_t K, int64_t N, int64_t ldb, bool b_is_nk) {
  if (K < 0 || N < 0) throw std::invalid_argument("gemm: negative B shape");
  if (ldb < (b_is_nk ? K : N)) throw std::invalid_argument("gemm: ldb smaller than a row of B");
  if (b == nullptr && K > 0 && N > 0) throw std::invalid_argument("gemm: B is null");
}

}  // namespace

PackedB::PackedB() = default;
PackedB::~PackedB() = default;
PackedB::PackedB(PackedB&&) noexcept = default;
PackedB& PackedB::operator=(PackedB&&) noexcept = default;

PackedB PackedB::pack(Isa isa, const float* b, int64_t K, int64_t N, int64_t ldb, bool b_is_nk) {
  return std::move(pack_all(isa, {{b, K, N, ldb, b_is_nk}}).front());
}

std::vector<PackedB> PackedB::pack_all(Isa isa, const std::vector<Source>& sources) {
  const GemmConfig& cfg = gemm_config(isa);
  size_t total = 0;
  for (const Source& s : sources) {
    check_pack_args(s.b, s.K, s.N, s.ldb, s.b_is_nk);
    total += static_cast<size_t>(round_up(s.N, cfg.nr) * s.K);  // a multiple of nr floats
  }
  const std::shared_ptr<float> block = alloc_floats(std::max<size_t>(total, 1));
  std::vector<PackedB> out(sources.size());
  size_t at = 0;
  for (size_t i = 0; i < sources.size(); ++i) {
    const Source& s = sources[i];
    PackedB& p = out[i];
    p.isa_ = isa;
    p.K_ = s.K;
    p.N_ = s.N;
    const size_t n = static_cast<size_t>(round_up(s.N, cfg.nr) * s.K);
    p.bytes_ = n * sizeof(float);
    p.data_ = std::shared_ptr<float>(block, block.get() + at);  // shares ownership of the block
    pack_b_panels(cfg, s.b, s.K, s.N, s.ldb, s.b_is_nk, block.get() + at, 0,
                  ceil_div(s.N, cfg.nr));
    at += n;
  }
  return out;
}

int64_t rows_per_panel(Isa isa) { return gemm_config(isa).mr; }
int64_t columns_per_panel(Isa isa) { return gemm_config(isa).nr; }

void gemm(Parallel* par, int64_t M, const float* A, int64_t lda, const PackedB& B, float* C,
          int64_t ldc, const Epilogue& ep) {
  if (B.empty()) return;
  run_packed(gemm_config(B.isa()), par, M, B.N(), B.K(), A, lda, B.data(), /*weight=*/true, C, ldc,
             ep, 0, B.N());
}

void gemm_columns(Parallel* par, int64_t M, const float* A, int64_t lda, const PackedB& B,
                  int64_t n0, int64_t n1, float* C, int64_t ldc, const Epilogue& ep) {
  const GemmConfig& cfg = gemm_config(B.isa());
  if (n0 < 0 || n1 > B.N() || n0 > n1 || n0 % cfg.nr != 0)
    throw std::invalid_argument("gemm_columns: columns [" + std::to_string(n0) + ", " +
                                std::to_string(n1) + ") of " + std::to_string(B.N()) +
                                " do not start at a column panel");
  if (B.empty()) return;
  run_packed(cfg, par, M, B.N(), B.K(), A, lda, B.data(), /*weight=*/true, C, ldc, ep, n0, n1);
}

void gemm_unpacked(Isa isa, Parallel* par, int64_t M, int64_t N, int64_t K, const float* A,
                   int64_t lda, const float* B, int64_t ldb, bool b_is_nk, float* C, int64_t ldc,
                   const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  check_pack_args(B, K, N, ldb, b_is_nk);
  const GemmConfig& cfg = gemm_config(isa);
  const int64_t panels = ceil_div(N, cfg.nr);
  float* bp = t_b_scratch.get(static_cast<size_t>(panels * cfg.nr * K));
  // Packing is a K × N copy against M × N × K multiply-adds: split it only when it is large.
  const int64_t panels_per_task =
      std::max<int64_t>(1, (int64_t{1} << 16) / (cfg.nr * std::max<int64_t>(K, 1)));
  parallel_for(par, ceil_div(panels, panels_per_task), [&](int64_t t) {
    const int64_t p0 = t * panels_per_task;
    pack_b_panels(cfg, B, K, N, ldb, b_is_nk, bp, p0, std::min(panels, p0 + panels_per_task));
  });
  run_packed(cfg, par, M, N, K, A, lda, bp, /*weight=*/false, C, ldc, ep, 0, N);
}

namespace {

float apply_reference(float x, Activation act) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x < 0.f ? 0.f : x;  // NaN stays NaN, as torch.relu
    case Activation::gelu:
      return static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))));
    case Activation::quick_gelu:
      return static_cast<float>(x / (1.0 + std::exp(-1.702 * double(x))));
  }
  return x;
}

}  // namespace

void gemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                    int64_t ldb, bool b_is_nk, float* C, int64_t ldc, const Epilogue& ep) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(A[m * lda + k]) * double(b_is_nk ? B[n * ldb + k] : B[k * ldb + n]);
      float v = static_cast<float>(acc);
      if (ep.bias) v += ep.bias[n];
      if (ep.residual) v += ep.residual[m * ep.ldr + n];
      C[m * ldc + n] = apply_reference(v, ep.act);
    }
}

}  // namespace tern::gemm
