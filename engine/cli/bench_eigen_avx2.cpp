// Eigen's GEMM as the benchmark baseline, compiled with -mavx2 -mfma (root CMakeLists.txt) so it
// uses the same instructions as Tern's AVX2 kernels. The only Eigen translation unit of the tern
// executable, so no Eigen template is compiled twice with different instruction sets.
#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/cli/bench_kernel.hpp"

namespace tern::cli {

double eigen_gemm_median_seconds(int64_t M, int64_t N, int64_t K, int iters) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Mat a = Mat::Random(M, K), b = Mat::Random(K, N);
  Mat c(M, N);
  c.noalias() = a * b;
  std::vector<double> times;
  for (int i = 0; i < std::max(iters, 1); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    c.noalias() = a * b;
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  volatile float keep = c(0, 0);
  (void)keep;
  return times[times.size() / 2];
}

}  // namespace tern::cli
