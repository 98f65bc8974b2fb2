// Pooling kernels (kernels/pool) against the NCHW reference loops, on every ISA this binary can
// run.
#include <cstdio>
#include <vector>

#include "engine/core/thread_pool.hpp"
#include "kernels/conv/conv.hpp"
#include "kernels/pool/pool.hpp"
#include "test_util.hpp"

using namespace tern;

namespace {

struct PoolCase {
  int64_t N, C, H, W;
  pool::PoolParams p;
};

std::string describe(const PoolCase& c, Isa isa) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "N=%lld C=%lld H=%lld W=%lld k=%lld s=%lld p=%lld isa=%s",
                (long long)c.N, (long long)c.C, (long long)c.H, (long long)c.W,
                (long long)c.p.kernel, (long long)c.p.stride, (long long)c.p.pad, isa_name(isa));
  return buf;
}

}  // namespace

TEST_CASE("pool: max pool 3x3 stride 2 pad 1 (and other windows) equals the reference exactly") {
  std::vector<PoolCase> cases;
  const pool::PoolParams resnet{3, 2, 1};
  for (int64_t C : {1, 3, 8, 17, 64, 100})
    for (auto [H, W] : {std::pair<int64_t, int64_t>{1, 1}, {2, 2}, {2, 3}, {7, 5}, {12, 12}})
      cases.push_back({2, C, H, W, resnet});
  cases.push_back({1, 64, 112, 112, resnet});
  cases.push_back({3, 33, 9, 4, {2, 2, 0}});
  cases.push_back({1, 20, 6, 7, {3, 1, 1}});
  cases.push_back({2, 5, 5, 5, {5, 3, 2}});
  ThreadPool pool3(3);
  for (const PoolCase& c : cases) {
    const int64_t OH = pool::pool_out_size(c.H, c.p), OW = pool::pool_out_size(c.W, c.p);
    REQUIRE(OH > 0);
    const auto x_nchw = test::random_floats(c.N * c.C * c.H * c.W, 11 + c.C * 7 + c.H);
    std::vector<float> x(x_nchw.size()), want_nchw(c.N * c.C * OH * OW), want(want_nchw.size());
    conv::nchw_to_nhwc(nullptr, c.N, c.C, c.H, c.W, x_nchw.data(), x.data());
    pool::max_pool2d_reference_nchw(c.p, c.N, c.C, c.H, c.W, x_nchw.data(), want_nchw.data());
    conv::nchw_to_nhwc(nullptr, c.N, c.C, OH, OW, want_nchw.data(), want.data());
    for (Isa isa : test::supported_isas()) {
      for (Parallel* par : {static_cast<Parallel*>(nullptr), static_cast<Parallel*>(&pool3)}) {
        std::vector<float> got(want.size(), -1e30f);
        pool::max_pool2d_nhwc(isa, par, c.p, c.N, c.H, c.W, c.C, x.data(), got.data());
        INFO(describe(c, isa));
        CHECK(got == want);
      }
    }
  }
}

TEST_CASE("pool: max pool ignores padding even when every tap is negative") {
  // A window at the border whose in-image taps are all negative must not return 0 (padding).
  const int64_t N = 1, C = 9, H = 3, W = 3;
  std::vector<float> x(N * H * W * C);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -1.f - float(i);
  for (Isa isa : test::supported_isas()) {
    std::vector<float> y(N * 2 * 2 * C);
    pool::max_pool2d_nhwc(isa, nullptr, {3, 2, 1}, N, H, W, C, x.data(), y.data());
    INFO(isa_name(isa));
    for (int64_t c = 0; c < C; ++c) CHECK(y[c] == x[c]);  // window at (0,0): max is pixel (0,0)
  }
}

TEST_CASE("pool: global average pool matches the reference and is identical across ISAs/threads") {
  ThreadPool pool2(2), pool3(3);
  for (int64_t C : {1, 7, 16, 31, 64, 100, 256, 300, 2048})
    for (int64_t HW : {1, 2, 49, 50}) {
      const int64_t N = 3;
      const auto x = test::random_floats(N * HW * C, 5 + C + HW, -2.f, 3.f);
      // NHWC [N, HW, C] -> NCHW [N, C, HW] for the reference.
      std::vector<float> x_nchw(x.size()), want(N * C);
      conv::nhwc_to_nchw(N, C, 1, HW, x.data(), x_nchw.data());
      pool::global_avg_pool_reference_nchw(N, C, HW, x_nchw.data(), want.data());
      std::vector<float> first;
      for (Isa isa : test::supported_isas())
        for (Parallel* par : {static_cast<Parallel*>(nullptr), static_cast<Parallel*>(&pool2),
                              static_cast<Parallel*>(&pool3)}) {
          std::vector<float> got(N * C, 1e30f);
          pool::global_avg_pool_nhwc(isa, par, N, HW, C, x.data(), got.data());
          INFO("C=", C, " HW=", HW, " isa=", isa_name(isa));
          CHECK(test::max_rel_diff(got.data(), want.data(), got.size()) <= 1e-6);
          if (first.empty()) first = got;
          CHECK(got == first);
        }
    }
}
