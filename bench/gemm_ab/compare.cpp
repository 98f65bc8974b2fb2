// Driver of bench/gemm_ab/run.sh: loads GEMM variants (shared objects built from variant.cpp),
// checks they agree, and times them alternately on each shape: rounds × (each variant once),
// keeping each variant's fastest run. Prints GFLOP/s as a percentage of --peak GFLOP/s.
//   compare --peak GFLOPS [--rounds N] A.so B.so ... [MxNxK ...]
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

struct Variant {
  std::string name;
  void* (*pack)(const float*, long, long);
  void (*run)(void*, long, const float*, float*);
  void (*release)(void*);
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Variant> vs;
  std::vector<std::array<long, 3>> shapes;
  double peak = 0;
  int rounds = 25;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--peak" && i + 1 < argc) {
      peak = std::atof(argv[++i]);
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a.size() > 3 && a.compare(a.size() - 3, 3, ".so") == 0) {
      void* h = dlopen(a.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        std::fprintf(stderr, "compare: %s\n", dlerror());
        return 1;
      }
      Variant v{a.substr(a.rfind('/') + 1, a.size() - a.rfind('/') - 4),
                reinterpret_cast<void* (*)(const float*, long, long)>(dlsym(h, "ab_pack")),
                reinterpret_cast<void (*)(void*, long, const float*, float*)>(dlsym(h, "ab_run")),
                reinterpret_cast<void (*)(void*)>(dlsym(h, "ab_free"))};
      if (!v.pack || !v.run || !v.release) {
        std::fprintf(stderr, "compare: %s lacks the ab_* entry points\n", a.c_str());
        return 1;
      }
      vs.push_back(v);
    } else {
      long m = 0, n = 0, k = 0;
      if (std::sscanf(a.c_str(), "%ldx%ldx%ld", &m, &n, &k) != 3 || m <= 0 || n <= 0 || k <= 0) {
        std::fprintf(stderr, "compare: bad argument '%s'\n", a.c_str());
        return 1;
      }
      shapes.push_back({m, n, k});
    }
  }
  if (vs.empty() || peak <= 0) {
    std::fprintf(stderr, "usage: compare --peak GFLOPS [--rounds N] A.so B.so ... [MxNxK ...]\n");
    return 1;
  }
  if (shapes.empty())
    shapes = {{256, 256, 256}, {512, 512, 512},  {1024, 1024, 1024}, {128, 3072, 768},
              {128, 768, 3072}, {128, 768, 768},  {197, 2304, 768},   {197, 3072, 768},
              {3136, 256, 64}, {3136, 64, 576},   {784, 128, 1152},   {49, 2048, 512}};
  std::printf("%-16s", "M x N x K");
  for (const auto& v : vs) std::printf(" %14s", v.name.c_str());
  std::printf("\n");
  std::vector<double> sum(vs.size(), 0);
  int status = 0;
  for (const auto& [M, N, K] : shapes) {
    std::vector<float> A(M * K), B(K * N), C(M * N), C0(M * N);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (auto& x : A) x = dist(rng);
    for (auto& x : B) x = dist(rng);
    std::vector<void*> packed;
    for (const auto& v : vs) packed.push_back(v.pack(B.data(), K, N));
    // Agreement first: every variant against the first (relative to the largest magnitude).
    vs[0].run(packed[0], M, A.data(), C0.data());
    float scale = 0;
    for (float x : C0) scale = std::max(scale, std::fabs(x));
    for (size_t i = 1; i < vs.size(); ++i) {
      vs[i].run(packed[i], M, A.data(), C.data());
      float worst = 0;
      for (size_t j = 0; j < C.size(); ++j) worst = std::max(worst, std::fabs(C[j] - C0[j]));
      if (worst > 1e-5f * scale) {
        std::fprintf(stderr, "compare: %s differs from %s by %g on %ldx%ldx%ld\n",
                     vs[i].name.c_str(), vs[0].name.c_str(), worst, M, N, K);
        status = 1;
      }
    }
    const double flop = 2.0 * M * N * K;
    const int reps = std::max(1, int(2e7 / flop * 40));  // ~10 ms a run at ~80 GFLOP/s
    std::vector<double> best(vs.size(), 1e30);
    for (int r = 0; r < rounds; ++r)
      for (size_t i = 0; i < vs.size(); ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int k = 0; k < reps; ++k) vs[i].run(packed[i], M, A.data(), C.data());
        best[i] = std::min(best[i], seconds_since(t0) / reps);
      }
    std::printf("%5ldx%5ldx%5ld", M, N, K);
    for (size_t i = 0; i < vs.size(); ++i) {
      const double pct = 100 * flop / best[i] * 1e-9 / peak;
      sum[i] += pct;
      std::printf(" %13.1f%%", pct);
    }
    std::printf("\n");
    for (size_t i = 0; i < vs.size(); ++i) vs[i].release(packed[i]);
  }
  std::printf("%-16s", "mean");
  for (double s : sum) std::printf(" %13.1f%%", s / shapes.size());
  std::printf("\n");
  return status;
}
