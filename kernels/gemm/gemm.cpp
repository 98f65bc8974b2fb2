// The GEMM operator: B packing, A packing, cache blocking, threading over tiles of C, dispatch to
// the per-ISA microkernels (gemm_scalar.cpp, gemm_avx2.cpp, gemm_avx512.cpp). Layouts and the
// microkernel contract: gemm_config.hpp.
//
// Loop nest of one task (a tile of at most mc rows × nc columns of C):
//   for each K block (kc):      pack A[tile rows, K block] into a thread-local buffer (stays in L2)
//     for each NR panel:        its kc × NR slice of packed B stays in L1 ...
//       for each MR row panel:  ... while the microkernel streams the A panels past it
// The first K block starts from the residual (or zero), later ones from the partial sums in C; the
// last applies bias and activation. Tiles depend on (M, N, K) only, and every element of C is the
// same sequence of multiply-adds whatever tile it lands in, so results never depend on threads.
#include "kernels/gemm/gemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/gemm/gemm_config.hpp"

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

std::shared_ptr<float> alloc_floats(size_t n) {
  void* p = nullptr;
  const size_t bytes = std::max<size_t>(n * sizeof(float), 64);
  if (posix_memalign(&p, 64, bytes) != 0) throw std::bad_alloc();
  return std::shared_ptr<float>(static_cast<float*>(p), std::free);
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

thread_local Scratch t_a_scratch;
thread_local Scratch t_b_scratch;

// Panels [p0, p1) of B into the [panel][K][NR] layout.
void pack_b_panels(int nr_tile, const float* b, int64_t K, int64_t N, int64_t ldb, bool b_is_nk,
                   float* dst, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * nr_tile, nn = std::min<int64_t>(nr_tile, N - n0);
    float* d = dst + p * K * nr_tile;
    if (!b_is_nk) {
      for (int64_t k = 0; k < K; ++k) {
        float* row = d + k * nr_tile;
        std::memcpy(row, b + k * ldb + n0, nn * sizeof(float));
        std::fill(row + nn, row + nr_tile, 0.f);
      }
    } else {
      if (nn < nr_tile)
        for (int64_t k = 0; k < K; ++k) std::fill(d + k * nr_tile + nn, d + (k + 1) * nr_tile, 0.f);
      for (int64_t j = 0; j < nn; ++j) {
        const float* src = b + (n0 + j) * ldb;
        for (int64_t k = 0; k < K; ++k) d[k * nr_tile + j] = src[k];
      }
    }
  }
}

// rows × kc block of A into row panels of mr rows, layout [kc][rows in panel].
void pack_a(const float* A, int64_t lda, int64_t rows, int64_t kc, int mr, float* dst) {
  for (int64_t i = 0; i < rows; i += mr) {
    const int64_t rn = std::min<int64_t>(mr, rows - i);
    for (int64_t r = 0; r < rn; ++r) {
      const float* src = A + (i + r) * lda;
      for (int64_t k = 0; k < kc; ++k) dst[k * rn + r] = src[k];
    }
    dst += rn * kc;
  }
}

struct Plan {
  int64_t nkb, kc;          // K blocks
  int64_t mt, nt;           // task tile
  int64_t tiles_m, tiles_n;
};

// Shape-only tiling: up to kTargetTasks tiles so a few threads can balance, but no tile below
// kMinTaskFlops (threading a tiny GEMM costs more than it saves).
Plan make_plan(const GemmConfig& cfg, int64_t M, int64_t N, int64_t K) {
  constexpr int64_t kTargetTasks = 8;
  constexpr double kMinTaskFlops = 4e6;
  Plan p;
  p.nkb = std::max<int64_t>(1, ceil_div(K, cfg.kc));
  p.kc = ceil_div(K, p.nkb);
  p.mt = std::min<int64_t>(cfg.mc, round_up(M, cfg.mr));
  p.nt = std::min<int64_t>(cfg.nc, round_up(N, cfg.nr));
  auto tasks = [&] { return ceil_div(M, p.mt) * ceil_div(N, p.nt); };
  auto flops = [&](int64_t mt, int64_t nt) {
    return 2.0 * std::min(mt, M) * std::min(nt, N) * std::max<int64_t>(K, 1);
  };
  while (tasks() < kTargetTasks && p.nt >= 32 * cfg.nr &&
         flops(p.mt, p.nt / 2) >= kMinTaskFlops)
    p.nt = round_up(p.nt / 2, cfg.nr);
  while (tasks() < kTargetTasks && p.mt >= 4 * cfg.mr &&
         flops(p.mt / 2, p.nt) >= kMinTaskFlops)
    p.mt = round_up(p.mt / 2, cfg.mr);
  p.tiles_m = ceil_div(M, p.mt);
  p.tiles_n = ceil_div(N, p.nt);
  return p;
}

void run_packed(const GemmConfig& cfg, Parallel* par, int64_t M, int64_t N, int64_t K,
                const float* A, int64_t lda, const float* bp, float* C, int64_t ldc,
                const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  const Plan plan = make_plan(cfg, M, N, K);
  const int64_t NR = cfg.nr;
  parallel_for_2d(par, plan.tiles_m, plan.tiles_n, [&](int64_t ti, int64_t tj) {
    const int64_t m0 = ti * plan.mt, m1 = std::min(M, m0 + plan.mt);
    const int64_t n0 = tj * plan.nt, n1 = std::min(N, n0 + plan.nt);
    const int64_t rows = m1 - m0;
    float* ap = t_a_scratch.get(static_cast<size_t>(rows * plan.kc));
    for (int64_t kb = 0; kb < plan.nkb; ++kb) {
      const int64_t k0 = kb * plan.kc, kc = std::min(plan.kc, K - k0);
      const bool last = kb == plan.nkb - 1;
      pack_a(A + m0 * lda + k0, lda, rows, kc, cfg.mr, ap);
      for (int64_t n = n0; n < n1; n += NR) {
        const int64_t nr = std::min(NR, n1 - n);
        const float* bpanel = bp + ((n / NR) * K + k0) * NR;
        const float* bias = last && ep.bias ? ep.bias + n : nullptr;
        const Activation act = last ? ep.act : Activation::none;
        const float* apanel = ap;
        for (int64_t m = m0; m < m1; m += cfg.mr) {
          const int64_t rn = std::min<int64_t>(cfg.mr, m1 - m);
          float* c = C + m * ldc + n;
          const float* init = c;
          int64_t ldi = ldc;
          if (kb == 0) {
            init = ep.residual ? ep.residual + m * ep.ldr + n : nullptr;
            ldi = ep.ldr;
          }
          cfg.ukernel[rn - 1](kc, apanel, bpanel, c, ldc, nr, init, ldi, bias, act);
          apanel += rn * kc;
        }
      }
    }
  });
}

void check_pack_args(const float* b, int64_t K, int64_t N, int64_t ldb, bool b_is_nk) {
  if (K < 0 || N < 0) throw std::invalid_argument("gemm: negative B shape");
  if (ldb < (b_is_nk ? K : N)) throw std::invalid_argument("gemm: ldb smaller than a row of B");
  if (b == nullptr && K > 0 && N > 0) throw std::invalid_argument("gemm: B is null");
}

}  // namespace

struct PackedBAccess {
  static PackedB make(Isa isa, int64_t K, int64_t N, int nr) {
    PackedB p;
    p.isa_ = isa;
    p.K_ = K;
    p.N_ = N;
    const size_t n = static_cast<size_t>(round_up(N, nr) * K);
    p.bytes_ = n * sizeof(float);
    p.data_ = alloc_floats(n);
    return p;
  }
  static float* data(PackedB& p) { return p.data_.get(); }
};

PackedB::PackedB() = default;
PackedB::~PackedB() = default;
PackedB::PackedB(PackedB&&) noexcept = default;
PackedB& PackedB::operator=(PackedB&&) noexcept = default;

PackedB PackedB::pack(Isa isa, const float* b, int64_t K, int64_t N, int64_t ldb, bool b_is_nk) {
  check_pack_args(b, K, N, ldb, b_is_nk);
  const GemmConfig& cfg = gemm_config(isa);
  PackedB p = PackedBAccess::make(isa, K, N, cfg.nr);
  pack_b_panels(cfg.nr, b, K, N, ldb, b_is_nk, PackedBAccess::data(p), 0, ceil_div(N, cfg.nr));
  return p;
}

void gemm(Parallel* par, int64_t M, const float* A, int64_t lda, const PackedB& B, float* C,
          int64_t ldc, const Epilogue& ep) {
  if (B.empty()) return;
  run_packed(gemm_config(B.isa()), par, M, B.N(), B.K(), A, lda, B.data(), C, ldc, ep);
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
  const int64_t panels_per_task = std::max<int64_t>(1, (int64_t{1} << 16) / (cfg.nr * std::max<int64_t>(K, 1)));
  parallel_for(par, ceil_div(panels, panels_per_task), [&](int64_t t) {
    const int64_t p0 = t * panels_per_task;
    pack_b_panels(cfg.nr, B, K, N, ldb, b_is_nk, bp, p0, std::min(panels, p0 + panels_per_task));
  });
  run_packed(cfg, par, M, N, K, A, lda, bp, C, ldc, ep);
}

namespace {

float apply_reference(float x, Activation act) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x < 0.f ? 0.f : x;  // NaN stays NaN, as torch.relu
    case Activation::gelu:
      return static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))));
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
