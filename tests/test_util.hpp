#pragma once
// Helpers shared by the C++ tests: seeded data, ISA iteration, tolerant comparison.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/core/cpu.hpp"

namespace tern::test {

inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// The ISA levels this machine can run; tests loop over them so every path is exercised.
inline std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

// max |a-b| / max(max|b|, floor)
inline double max_rel_diff(const float* a, const float* b, size_t n, double floor = 1e-30) {
  double md = 0, mb = floor;
  for (size_t i = 0; i < n; ++i) {
    md = std::max(md, std::fabs(double(a[i]) - double(b[i])));
    mb = std::max(mb, std::fabs(double(b[i])));
  }
  return md / mb;
}

inline std::string source_path(const std::string& rel) { return std::string(TERN_SOURCE_DIR) + "/" + rel; }
inline std::string shared_path(const std::string& rel) { return std::string(TERN_SHARED_DIR) + "/" + rel; }

}  // namespace tern::test
