// One GEMM variant as a shared object for bench/gemm_ab/run.sh: the kernels/gemm sources of some
// revision compiled with this entry point, so several revisions can be loaded into one process
// and timed alternately (on a shared machine, interference hits them all alike).
#include <cstdlib>
#include <cstring>
#include <memory>

#include "engine/core/thread_pool.hpp"
#include "kernels/gemm/gemm.hpp"

namespace {

tern::Isa isa_from_env() {
  const char* s = std::getenv("TERN_AB_ISA");
  if (s && std::strcmp(s, "avx512") == 0) return tern::Isa::avx512;
  if (s && std::strcmp(s, "scalar") == 0) return tern::Isa::scalar;
  return tern::Isa::avx2;
}

tern::ThreadPool* pool() {
  static std::unique_ptr<tern::ThreadPool> p = []() -> std::unique_ptr<tern::ThreadPool> {
    const char* s = std::getenv("TERN_AB_THREADS");
    const int t = s ? std::atoi(s) : 1;
    return t > 1 ? std::make_unique<tern::ThreadPool>(t) : nullptr;
  }();
  return p.get();
}

}  // namespace

#define AB_API extern "C" __attribute__((visibility("default")))

AB_API void* ab_pack(const float* b, long K, long N) {
  return new tern::gemm::PackedB(tern::gemm::PackedB::pack(isa_from_env(), b, K, N, N, false));
}

AB_API void ab_run(void* packed, long M, const float* a, float* c) {
  const auto* p = static_cast<tern::gemm::PackedB*>(packed);
  tern::gemm::gemm(pool(), M, a, p->K(), *p, c, p->N());
}

AB_API void ab_free(void* packed) { delete static_cast<tern::gemm::PackedB*>(packed); }
