// LayerNorm kernels against the double-precision reference, every ISA this binary can run.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/thread_pool.hpp"
#include "kernels/norm/layer_norm.hpp"
#include "test_util.hpp"

using namespace tern;

namespace {

struct Case {
  int64_t rows, dim, ldx, ldy;
  float offset, spread, eps;
};

std::string describe(Isa isa, const Case& c) {
  return std::string(isa_name(isa)) + " rows=" + std::to_string(c.rows) +
         " dim=" + std::to_string(c.dim) + " ldx=" + std::to_string(c.ldx) +
         " ldy=" + std::to_string(c.ldy) + " offset=" + std::to_string(c.offset) +
         " spread=" + std::to_string(c.spread) + " eps=" + std::to_string(c.eps);
}

// Checks rows of y against the reference; values past dim in each row of y must stay untouched.
void run_case(Isa isa, const Case& c, uint64_t seed, Parallel* par, double tol) {
  auto x = test::random_floats(c.rows * c.ldx, seed, -c.spread, c.spread);
  for (auto& v : x) v += c.offset;
  const auto gamma = test::random_floats(c.dim, seed + 1, 0.5f, 1.5f);
  const auto beta = test::random_floats(c.dim, seed + 2, -0.5f, 0.5f);
  const float sentinel = 12345.f;
  std::vector<float> y(c.rows * c.ldy, sentinel), ref(c.rows * c.ldy, sentinel);
  norm::layer_norm(isa, par, c.rows, c.dim, x.data(), c.ldx, gamma.data(), beta.data(), c.eps,
                   y.data(), c.ldy);
  norm::layer_norm_reference(c.rows, c.dim, x.data(), c.ldx, gamma.data(), beta.data(), c.eps,
                             ref.data(), c.ldy);
  INFO(describe(isa, c));
  for (int64_t r = 0; r < c.rows; ++r) {
    INFO("row " << r);
    const double d = test::max_rel_diff(y.data() + r * c.ldy, ref.data() + r * c.ldy, c.dim, 1e-6);
    CHECK(d <= tol);
    for (int64_t i = c.dim; i < c.ldy; ++i) REQUIRE(y[r * c.ldy + i] == sentinel);
  }
}

}  // namespace

TEST_CASE("kernel layer_norm: matches the reference for edge and model dims") {
  uint64_t seed = 100;
  for (Isa isa : test::supported_isas())
    for (int64_t dim : {1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 48, 64, 100, 768, 1024, 1029})
      for (int64_t rows : {1, 3, 37}) {
        run_case(isa, {rows, dim, dim, dim, 0.f, 1.f, 1e-5f}, ++seed, nullptr, 5e-6);
        run_case(isa, {rows, dim, dim + 5, dim + 3, 0.3f, 4.f, 1e-12f}, ++seed, nullptr, 5e-6);
      }
}

TEST_CASE("kernel layer_norm: large mean against a small spread keeps its precision") {
  // The mean of ~100 is only representable to ~4e-6 in fp32, so that is the floor here; a naive
  // one-pass E[x^2] - E[x]^2 in fp32 would lose the variance entirely (1e4 vs 1e-2).
  for (Isa isa : test::supported_isas())
    for (int64_t dim : {24, 768})
      run_case(isa, {9, dim, dim, dim, 100.f, 0.1f, 1e-6f}, 7, nullptr, 1e-4);
}

TEST_CASE("kernel layer_norm: constant rows, eps, and in-place use") {
  for (Isa isa : test::supported_isas()) {
    INFO(isa_name(isa));
    // A constant row: var = 0, output = beta exactly, finite for eps > 0.
    const int64_t dim = 37;
    std::vector<float> x(dim, 3.25f), y(dim), gamma(dim, 2.f), beta(dim);
    for (int64_t i = 0; i < dim; ++i) beta[i] = float(i) * 0.1f;
    norm::layer_norm(isa, nullptr, 1, dim, x.data(), dim, gamma.data(), beta.data(), 1e-12f,
                     y.data(), dim);
    for (int64_t i = 0; i < dim; ++i) CHECK(y[i] == beta[i]);
    // In place equals out of place.
    const int64_t rows = 5, d2 = 768;
    auto a = test::random_floats(rows * d2, 3);
    auto g = test::random_floats(d2, 4), b = test::random_floats(d2, 5);
    std::vector<float> out(rows * d2);
    norm::layer_norm(isa, nullptr, rows, d2, a.data(), d2, g.data(), b.data(), 1e-12f, out.data(),
                     d2);
    norm::layer_norm(isa, nullptr, rows, d2, a.data(), d2, g.data(), b.data(), 1e-12f, a.data(),
                     d2);
    CHECK(std::memcmp(a.data(), out.data(), sizeof(float) * a.size()) == 0);
  }
}

TEST_CASE("kernel layer_norm: results do not depend on the thread count") {
  const int64_t rows = 197, dim = 768;
  const auto x = test::random_floats(rows * dim, 11);
  const auto g = test::random_floats(dim, 12), b = test::random_floats(dim, 13);
  for (Isa isa : test::supported_isas()) {
    std::vector<float> y1(rows * dim), y3(rows * dim);
    ThreadPool one(1), three(3);
    norm::layer_norm(isa, &one, rows, dim, x.data(), dim, g.data(), b.data(), 1e-6f, y1.data(),
                     dim);
    norm::layer_norm(isa, &three, rows, dim, x.data(), dim, g.data(), b.data(), 1e-6f, y3.data(),
                     dim);
    INFO(isa_name(isa));
    CHECK(std::memcmp(y1.data(), y3.data(), sizeof(float) * y1.size()) == 0);
  }
}
