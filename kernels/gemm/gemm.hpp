#pragma once
// f32 GEMM: C[M,N] = act(A[M,K] · B[K,N] + bias[N] + residual[M,N]).
//
// Strides are in elements. A is row-major with leading dimension lda (>= K). C and residual are
// row-major with leading dimensions ldc / ldr (>= N); residual may alias C (ldr == ldc).
// B is a weight: packed once (PackedB::pack) into the layout of the microkernel of the ISA it was
// packed for; gemm() runs that ISA's microkernel. B can be given as [K,N] row-major (ldb >= N) or,
// as PyTorch stores Linear weights, as [N,K] row-major (b_is_nk = true, ldb >= K).
// Epilogue order: bias, then residual, then activation, in one pass over C.
// (Rounding: K is summed in blocks of the microkernel's kc, each block's sum added to the residual
// or to the partial sums already in C, which is what lets the residual alias C; the result differs
// from the reference's order only in the last bits.)
// Bounds: the kernels read exactly A[M, K] (lda), B[K or N rows] (ldb), bias[N] and
// residual[M, N] (ldr), and write exactly C[M, N] (ldc): column tails use masked loads and stores,
// so nothing past the last row or between rows (ld > width) is touched. Layouts and blocking:
// kernels/gemm/gemm_config.hpp.
// Threading: tiles of C are tasks on the Parallel; each tile accumulates over K in the same order
// whatever the thread count, so results are bit-identical for any number of threads.
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern::gemm {

// gelu: exact erf form, 0.5·x·(1 + erf(x/√2));
// quick_gelu: x·σ(1.702·x) (OpenAI CLIP's QuickGELU)
enum class Activation { none, relu, gelu, quick_gelu };

struct Epilogue {
  const float* bias = nullptr;      // [N] or null
  const float* residual = nullptr;  // [M, ldr] or null
  int64_t ldr = 0;
  Activation act = Activation::none;
};

class PackedB {
 public:
  PackedB();
  ~PackedB();
  PackedB(PackedB&&) noexcept;
  PackedB& operator=(PackedB&&) noexcept;

  static PackedB pack(Isa isa, const float* b, int64_t K, int64_t N, int64_t ldb, bool b_is_nk);

  // Several weights packed back to back in one allocation, in the order given (each as pack()
  // would pack it; the buffer lives until the last of them is destroyed). For a layer kept as
  // many small PackedBs (a convolution's column blocks, its 36 Winograd planes): one block of
  // 2 MiB or more sits on huge pages, and one task's consecutive weights are consecutive in memory,
  // where separate small allocations each sat on 4 KiB pages (a TLB miss and a restart of the
  // hardware prefetcher every 4 KiB of weights streamed from memory).
  struct Source {
    const float* b;
    int64_t K, N, ldb;
    bool b_is_nk;
  };
  static std::vector<PackedB> pack_all(Isa isa, const std::vector<Source>& sources);

  Isa isa() const { return isa_; }
  int64_t K() const { return K_; }
  int64_t N() const { return N_; }
  bool empty() const { return data_ == nullptr; }
  const float* data() const { return data_.get(); }
  size_t bytes() const { return bytes_; }

 private:
  Isa isa_ = Isa::scalar;
  int64_t K_ = 0, N_ = 0;
  size_t bytes_ = 0;
  std::shared_ptr<float> data_;
};

// C = act(A · B + ...) with B packed for B.isa().
void gemm(Parallel* par, int64_t M, const float* A, int64_t lda, const PackedB& B, float* C,
          int64_t ldc, const Epilogue& ep = {});

// Only columns [n0, n1) of C = act(A · B + ...): the same values gemm() gives them, the rest of C
// untouched. C, bias and residual are still indexed from column 0. n0 must be a multiple of
// columns_per_panel(B.isa()) (a column panel of the packed layout), 0 <= n0 <= n1 <= B.N().
// (A fused projection of which only some outputs are needed for some rows: the keys and values
// of every token, the queries of one.)
void gemm_columns(Parallel* par, int64_t M, const float* A, int64_t lda, const PackedB& B,
                  int64_t n0, int64_t n1, float* C, int64_t ldc, const Epilogue& ep = {});

// B not packed beforehand (activations: attention products, per-call operands). Packs into
// scratch internally; b_is_nk as in PackedB::pack.
void gemm_unpacked(Isa isa, Parallel* par, int64_t M, int64_t N, int64_t K, const float* A,
                   int64_t lda, const float* B, int64_t ldb, bool b_is_nk, float* C, int64_t ldc,
                   const Epilogue& ep = {});

// Rows of C one microkernel call computes for this ISA (MR). GEMMs whose M is a multiple of it
// never run a partial row panel, which is slower per row: callers that cut M into pieces should
// cut at multiples of it.
int64_t rows_per_panel(Isa isa);
// Columns of one packed B panel for this ISA (NR): gemm_columns' n0 is a multiple of it.
int64_t columns_per_panel(Isa isa);

// The oracle: plain loops, double accumulation, same epilogue semantics.
void gemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                    int64_t ldb, bool b_is_nk, float* C, int64_t ldc, const Epilogue& ep = {});

}  // namespace tern::gemm
