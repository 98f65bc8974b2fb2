// Eigen's GEMM as the benchmark baseline, compiled with -mavx2 -mfma (root CMakeLists.txt) so it
// uses the same instructions as Tern's AVX2 kernels. The only Eigen translation unit of
// tern_kernel_bench, so no Eigen template is compiled twice with different instruction sets.
#include <Eigen/Dense>
#include <memory>

#include "bench/kernels/eigen_gemm.hpp"

namespace tern::bench {

std::function<void()> eigen_gemm_runner(int64_t M, int64_t N, int64_t K) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  struct Operands {
    Mat a, b, c;
  };
  auto ops = std::make_shared<Operands>(Operands{Mat::Random(M, K), Mat::Random(K, N), Mat(M, N)});
  return [ops] { ops->c.noalias() = ops->a * ops->b; };
}

}  // namespace tern::bench
