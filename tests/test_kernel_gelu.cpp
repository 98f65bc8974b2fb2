// Vector exp / erf / GELU (kernels/vmath, kernels/activation) against the C++ standard library in
// double precision, over the whole float range that matters plus ±inf, NaN and huge values.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/activation/gelu.hpp"
#include "kernels/vmath/vec_math.hpp"
#include "test_util.hpp"

using namespace tern;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

// Distance in units in the last place between float a and the exact value e.
double ulps(float a, double e) {
  const float ef = static_cast<float>(e);
  const double ulp = std::nextafter(std::fabs(ef), kInf) - std::fabs(ef);
  return std::fabs(double(a) - e) / ulp;
}

std::vector<float> grid(float lo, float hi, int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = lo + (hi - lo) * float(i) / float(n - 1);
  return v;
}

double gelu_exact(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

}  // namespace

TEST_CASE("vec_math exp: a few ulp over the normal range, inf/NaN/overflow/underflow exact") {
  auto x = grid(-87.0f, 88.5f, 200001);
  const auto r = test::random_floats(20000, 11, -10.f, 10.f);
  x.insert(x.end(), r.begin(), r.end());
  for (float v : {0.f, -0.f, 1e-8f, -1e-8f, 0.5f, 88.7f, -87.3f}) x.push_back(v);
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    std::vector<float> y(x.size());
    vmath::exp(isa, int64_t(x.size()), x.data(), y.data());
    double worst = 0;
    float worst_x = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double u = ulps(y[i], std::exp(double(x[i])));
      if (u > worst) worst = u, worst_x = x[i];
    }
    CAPTURE(worst_x);
    CHECK(worst <= 3.0);
    const float special[] = {kInf, -kInf, kNan, 89.f, 100.f, 1e30f, -104.f, -200.f, -1e30f};
    float out[9];
    vmath::exp(isa, 9, special, out);
    CHECK(out[0] == kInf);
    CHECK(out[1] == 0.f);
    CHECK(std::isnan(out[2]));
    CHECK(out[3] == kInf);
    CHECK(out[4] == kInf);
    CHECK(out[5] == kInf);
    CHECK(out[6] == 0.f);
    CHECK(out[7] == 0.f);
    CHECK(out[8] == 0.f);
  }
}

TEST_CASE("vec_math erf: within 3 ulp near 0, 2e-7 absolute elsewhere, ±1 / NaN at the ends") {
  auto x = grid(-6.f, 6.f, 240001);
  for (float v : {0.f, -0.f, 1e-30f, -1e-20f, 1e-6f, 0.874f, 0.875f, 0.876f, 3.99f, 4.f, 4.01f})
    x.push_back(v);
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    std::vector<float> y(x.size());
    vmath::erf(isa, int64_t(x.size()), x.data(), y.data());
    double worst_abs = 0, worst_ulp_small = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double e = std::erf(double(x[i]));
      worst_abs = std::max(worst_abs, std::fabs(y[i] - e));
      if (std::fabs(x[i]) < 0.875f && x[i] != 0.f)
        worst_ulp_small = std::max(worst_ulp_small, ulps(y[i], e));
    }
    CHECK(worst_abs <= 2e-7);
    CHECK(worst_ulp_small <= 4.0);
    const float special[] = {kInf, -kInf, kNan, 10.f, -10.f, 1e30f, -0.f};
    float out[7];
    vmath::erf(isa, 7, special, out);
    CHECK(out[0] == 1.f);
    CHECK(out[1] == -1.f);
    CHECK(std::isnan(out[2]));
    CHECK(out[3] == 1.f);
    CHECK(out[4] == -1.f);
    CHECK(out[5] == 1.f);
    CHECK((out[6] == 0.f && std::signbit(out[6])));
  }
}

TEST_CASE("gelu: within 1e-6 absolute of the exact erf form for every ISA, odd lengths, in place") {
  auto x = grid(-12.f, 12.f, 240001);
  const auto r = test::random_floats(10001, 5, -6.f, 6.f);
  x.insert(x.end(), r.begin(), r.end());
  for (float v : {-5.657f, -5.656f, -1.2374f, -1.2373f, 1e-30f, -1e-30f, 0.f})  // branch edges
    x.push_back(v);
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(17), int64_t(x.size())}) {
      CAPTURE(n);
      std::vector<float> y(x.begin(), x.begin() + n);
      activation::gelu(isa, n, y.data(), y.data());
      double worst = 0;
      float worst_x = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double d = std::fabs(y[i] - gelu_exact(x[i]));
        if (d > worst) worst = d, worst_x = x[i];
      }
      CAPTURE(worst_x);
      CHECK(worst <= 1e-6);
    }
    const float special[] = {kInf, -kInf, kNan, 1e30f, -1e30f, 100.f, -100.f, 3e38f};
    float out[8];
    activation::gelu(isa, 8, special, out);
    CHECK(out[0] == kInf);
    CHECK(std::isnan(out[1]));
    CHECK(std::isnan(out[2]));
    CHECK(out[3] == 1e30f);
    CHECK(out[4] == 0.f);
    CHECK(out[5] == 100.f);
    CHECK(out[6] == 0.f);
    CHECK(out[7] == 3e38f);
  }
}
