// Convolution (kernels/conv) against the direct NCHW reference: every ResNet50 conv configuration
// at small spatial sizes, odd sizes, batch > 1, fused bias / residual / ReLU, every ISA, and
// bit-identical results for 1, 2 and 3 threads.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/core/thread_pool.hpp"
#include "kernels/conv/conv.hpp"
#include "test_util.hpp"

using namespace tern;

namespace {

struct ConvCase {
  const char* what;
  int64_t N, H, W;
  conv::ConvParams p;
  bool residual, relu;
};

std::string describe(const ConvCase& c, Isa isa) {
  char buf[300];
  std::snprintf(buf, sizeof buf,
                "%s: N=%lld H=%lld W=%lld C=%lld OC=%lld k=%lldx%lld s=%lld p=%lld "
                "residual=%d relu=%d isa=%s",
                c.what, (long long)c.N, (long long)c.H, (long long)c.W, (long long)c.p.in_channels,
                (long long)c.p.out_channels, (long long)c.p.kernel_h, (long long)c.p.kernel_w,
                (long long)c.p.stride, (long long)c.p.pad, c.residual, c.relu, isa_name(isa));
  return buf;
}

conv::ConvParams params(int64_t C, int64_t OC, int64_t k, int64_t s, int64_t pad) {
  return {C, OC, k, k, s, pad};
}

// fp32 accumulation over K terms against a double-accumulated oracle: the error bound grows
// like sqrt(K)·eps relative to the largest output (random signs); 8·sqrt(K)·eps leaves margin
// for the worst output while still catching any wrong tap (an error of order 1/K, >= 2e-4 here).
double tolerance(int64_t K) {
  return 8.0 * std::sqrt(double(K)) * 1.19e-7;
}

void check_case(const ConvCase& c, ThreadPool& pool2, ThreadPool& pool3, uint64_t seed) {
  const conv::ConvParams& p = c.p;
  const int64_t OH = conv::conv_out_size(c.H, p.kernel_h, p.stride, p.pad);
  const int64_t OW = conv::conv_out_size(c.W, p.kernel_w, p.stride, p.pad);
  REQUIRE(OH > 0);
  REQUIRE(OW > 0);
  const int64_t C = p.in_channels, OC = p.out_channels, K = p.kernel_h * p.kernel_w * C;
  const auto x_nchw = test::random_floats(c.N * C * c.H * c.W, seed);
  const float wscale = 1.f / std::sqrt(float(K));
  const auto w = test::random_floats(OC * K, seed + 1, -wscale, wscale);
  const auto bias = test::random_floats(OC, seed + 2, -0.5f, 0.5f);
  const auto r_nchw = test::random_floats(c.N * OC * OH * OW, seed + 3);
  std::vector<float> want_nchw(r_nchw.size());
  conv::conv2d_reference_nchw(p, c.N, c.H, c.W, x_nchw.data(), w.data(), bias.data(),
                              c.residual ? r_nchw.data() : nullptr, c.relu, want_nchw.data());
  std::vector<float> x(x_nchw.size()), r(r_nchw.size()), want(want_nchw.size());
  conv::nchw_to_nhwc(nullptr, c.N, C, c.H, c.W, x_nchw.data(), x.data());
  conv::nchw_to_nhwc(nullptr, c.N, OC, OH, OW, r_nchw.data(), r.data());
  conv::nchw_to_nhwc(nullptr, c.N, OC, OH, OW, want_nchw.data(), want.data());
  for (Isa isa : test::supported_isas()) {
    INFO(describe(c, isa));
    const conv::Conv2d conv = conv::Conv2d::pack(isa, p, w.data(), bias.data());
    CHECK(conv.k() == K);
    CHECK(conv.winograd() == conv::use_winograd(isa, p));
    CHECK(conv.winograd_tile() == conv::winograd_tile(isa, p));
    std::vector<float> y1(want.size(), 1e30f);
    conv.run(nullptr, c.N, c.H, c.W, x.data(), y1.data(), c.residual ? r.data() : nullptr, c.relu);
    const double err = test::max_rel_diff(y1.data(), want.data(), want.size(), 1e-3);
    CHECK_MESSAGE(err <= tolerance(K), "max rel diff ", err);
    if (c.relu)
      CHECK(std::count_if(y1.begin(), y1.end(), [](float v) { return !(v >= 0.f); }) == 0);
    // Same bits for any thread count.
    for (ThreadPool* tp : {&pool2, &pool3}) {
      std::vector<float> yt(want.size(), 1e30f);
      conv.run(tp, c.N, c.H, c.W, x.data(), yt.data(), c.residual ? r.data() : nullptr, c.relu);
      CHECK_MESSAGE(yt == y1, "threads=", tp->num_threads());
    }
    // The residual may alias the output (the model adds the shortcut in place).
    if (c.residual) {
      std::vector<float> inplace = r;
      conv.run(&pool2, c.N, c.H, c.W, x.data(), inplace.data(), inplace.data(), c.relu);
      CHECK_MESSAGE(inplace == y1, "residual aliasing the output");
    }
  }
}

}  // namespace

TEST_CASE("conv: every ResNet50 convolution configuration against the direct reference") {
  const std::vector<ConvCase> cases = {
      // stem
      {"stem 7x7/2", 2, 23, 17, params(3, 64, 7, 2, 3), false, true},
      {"stem 7x7/2 tiny", 1, 1, 2, params(3, 64, 7, 2, 3), false, true},
      // bottleneck 1x1 reductions and expansions (stride 1): plain GEMM on NHWC
      {"1x1 64->64", 2, 9, 7, params(64, 64, 1, 1, 0), false, true},
      {"1x1 256->64", 2, 5, 7, params(256, 64, 1, 1, 0), false, true},
      {"1x1 64->256 +res", 2, 9, 7, params(64, 256, 1, 1, 0), true, true},
      {"1x1 256->128", 1, 6, 5, params(256, 128, 1, 1, 0), false, true},
      {"1x1 512->256", 2, 3, 5, params(512, 256, 1, 1, 0), false, true},
      {"1x1 1024->512", 1, 3, 3, params(1024, 512, 1, 1, 0), false, true},
      {"1x1 512->2048 +res", 2, 2, 3, params(512, 2048, 1, 1, 0), true, true},
      {"1x1 2048->512", 1, 2, 2, params(2048, 512, 1, 1, 0), false, true},
      // 3x3 stride 1 and stride 2 (v1.5: stride on the 3x3)
      {"3x3/1 64", 2, 9, 7, params(64, 64, 3, 1, 1), false, true},
      {"3x3/2 128", 2, 11, 8, params(128, 128, 3, 2, 1), false, true},
      {"3x3/1 128", 1, 5, 6, params(128, 128, 3, 1, 1), false, true},
      {"3x3/2 256", 1, 7, 7, params(256, 256, 3, 2, 1), false, true},
      {"3x3/1 256", 1, 4, 3, params(256, 256, 3, 1, 1), false, true},
      {"3x3/2 512", 2, 3, 4, params(512, 512, 3, 2, 1), false, true},
      {"3x3/1 512", 1, 3, 3, params(512, 512, 3, 1, 1), false, true},
      {"3x3/1 1x1 map", 2, 1, 1, params(64, 64, 3, 1, 1), false, true},
      {"3x3/2 2x1 map", 1, 2, 1, params(128, 128, 3, 2, 1), false, true},
      // downsample shortcuts: 1x1 stride 1 (first stage) and stride 2 (strided gather + GEMM)
      {"1x1/2 256->512", 2, 9, 7, params(256, 512, 1, 2, 0), false, false},
      {"1x1/2 512->1024", 1, 5, 5, params(512, 1024, 1, 2, 0), false, false},
      {"1x1/2 1024->2048", 1, 3, 4, params(1024, 2048, 1, 2, 0), false, false},
      {"1x1/1 64->256 no act", 3, 4, 5, params(64, 256, 1, 1, 0), false, false},
      // fused residual with the 3x3 and with no ReLU
      {"3x3/1 +res no relu", 2, 5, 5, params(32, 48, 3, 1, 1), true, false},
  };
  ThreadPool pool2(2), pool3(3);
  uint64_t seed = 100;
  for (const ConvCase& c : cases) check_case(c, pool2, pool3, seed += 10);
}

TEST_CASE("conv: random shapes across the column-block boundary and odd sizes") {
  std::mt19937_64 rng(2024);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  ThreadPool pool2(2), pool3(3);
  for (int i = 0; i < 24; ++i) {
    const int64_t k = std::array<int64_t, 4>{1, 3, 5, 7}[pick(0, 3)];
    const int64_t s = pick(1, 3), pad = pick(0, k / 2);
    const int64_t OC = pick(0, 2) == 0 ? pick(120, 300) : pick(1, 40);
    ConvCase c{"random",
               pick(1, 3),
               pick(k, 13),
               pick(k, 11),
               params(pick(1, 19), OC, k, s, pad),
               pick(0, 1) == 1,
               pick(0, 1) == 1};
    check_case(c, pool2, pool3, 7000 + i);
  }
}

TEST_CASE("conv: 3x3 stride 1 by Winograd F(4,3), F(2,3) and the GEMM path, all against the reference") {
  // Map sizes around the 4x4 and 2x2 tiles (1..9, partial tiles on both edges), channel counts off the
  // vector width (tails), output channels across the Winograd column block (128 wide on AVX-512, 256 on AVX2 and scalar), batches > 1.
  const std::vector<ConvCase> cases = {
      {"1x1 map", 1, 1, 1, params(16, 16, 3, 1, 1), false, true},
      {"2x3 map, C tail", 2, 2, 3, params(20, 24, 3, 1, 1), true, true},
      {"5x7", 3, 5, 7, params(17, 33, 3, 1, 1), false, false},
      {"8x8 +res", 2, 8, 8, params(64, 64, 3, 1, 1), true, true},
      {"9x6 C=1", 1, 9, 6, params(1, 5, 3, 1, 1), false, true},
      {"7x7 512", 1, 7, 7, params(512, 512, 3, 1, 1), true, true},
      {"14x14 256", 1, 14, 14, params(256, 256, 3, 1, 1), false, true},
      {"6x5 OC 300", 2, 6, 5, params(40, 300, 3, 1, 1), true, false},
      {"56x12 64", 1, 56, 12, params(64, 64, 3, 1, 1), false, true},
  };
  ThreadPool pool2(2), pool3(3);
  uint64_t seed = 900;
  for (ConvCase c : cases)
    for (conv::ConvAlgo algo :
         {conv::ConvAlgo::winograd, conv::ConvAlgo::winograd_f2, conv::ConvAlgo::gemm}) {
      c.p.algo = algo;
      c.what = algo == conv::ConvAlgo::winograd      ? "winograd F(4,3)"
               : algo == conv::ConvAlgo::winograd_f2 ? "winograd F(2,3)"
                                                     : "gemm";
      check_case(c, pool2, pool3, seed += 10);
    }
  conv::ConvParams p = params(16, 16, 3, 1, 1);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) CHECK(conv::winograd_tile(isa, p) == 4);
  // measured: see conv.cpp
  CHECK(conv::winograd_tile(Isa::avx512, params(128, 128, 3, 1, 1)) == 4);
  CHECK(conv::winograd_tile(Isa::avx512, params(128, 256, 3, 1, 1)) == 4);
  CHECK(conv::winograd_tile(Isa::avx512, params(256, 256, 3, 1, 1)) == 2);
  CHECK(conv::winograd_tile(Isa::avx512, params(512, 512, 3, 1, 1)) == 2);
  CHECK(conv::winograd_tile(Isa::avx2, params(256, 256, 3, 1, 1)) == 4);
  CHECK(conv::winograd_tile(Isa::avx2, params(512, 512, 3, 1, 1)) == 4);
  CHECK(conv::use_winograd(Isa::avx512, params(512, 512, 3, 1, 1)));
  p.algo = conv::ConvAlgo::gemm;
  CHECK(!conv::use_winograd(Isa::avx2, p));
  CHECK(!conv::use_winograd(Isa::avx2, params(64, 64, 3, 2, 1)));
  CHECK(!conv::use_winograd(Isa::avx2, params(8, 64, 3, 1, 1)));
  p = params(8, 8, 5, 1, 2);
  p.algo = conv::ConvAlgo::winograd;
  const std::vector<float> w(8 * 8 * 25, 0.f);
  CHECK_THROWS(conv::Conv2d::pack(Isa::scalar, p, w.data(), nullptr));
}

TEST_CASE("conv: Winograd point by point and fused give the same bits (an image alone = in a batch)") {
  // F(4,3): one 14x14 map has 16 tiles, few against 256x256 filters, so it runs point by point;
  // nine images are 144 tiles and run fused. F(2,3): one 7x7 map has 16 tiles against 512x512
  // filters (by points), seventeen have 272 (fused). Both schedules, on every ISA and thread count,
  // must give each image the same bits, and agree with the reference.
  CHECK(!conv::winograd_by_points(36, 49, 128, 128));  // ResNet50's second stage at batch 1: fused
  CHECK(conv::winograd_by_points(36, 128, 256, 256));  // its third stage at batch 8: 9.4 MB of filters
  CHECK(!conv::winograd_by_points(36, 129, 256, 256));
  CHECK(conv::winograd_by_points(16, 128, 512, 512));  // its fourth stage at batch 8 (F(2,3))
  struct Case {
    conv::ConvAlgo algo;
    int points;
    int64_t N, H, C;
  };
  for (const Case& k : {Case{conv::ConvAlgo::winograd, 36, 9, 14, 256},
                        Case{conv::ConvAlgo::winograd_f2, 16, 17, 7, 512}}) {
    const int64_t N = k.N, H = k.H, W = k.H, C = k.C, OC = k.C;
    CAPTURE(k.points);
    REQUIRE(conv::winograd_by_points(k.points, 16, C, OC));
    REQUIRE(!conv::winograd_by_points(k.points, N * 16, C, OC));
    conv::ConvParams p = params(C, OC, 3, 1, 1);
    p.algo = k.algo;
    const auto x = test::random_floats(N * H * W * C, 31);
    const auto w = test::random_floats(OC * C * 9, 32, -1.f / 48, 1.f / 48);
    const auto bias = test::random_floats(OC, 33, -0.5f, 0.5f);
    const auto res = test::random_floats(N * H * W * OC, 34);
    ThreadPool pool2(2);
    const int64_t in_img = H * W * C, out_img = H * W * OC;
    for (Isa isa : test::supported_isas()) {
      INFO(isa_name(isa));
      const conv::Conv2d conv = conv::Conv2d::pack(isa, p, w.data(), bias.data());
      std::vector<float> batch(N * out_img, 1e30f);
      conv.run(&pool2, N, H, W, x.data(), batch.data(), res.data(), true);
      for (int64_t n : {int64_t{0}, int64_t{5}})
        for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool2}) {
          std::vector<float> one(out_img, 1e30f);
          conv.run(tp, 1, H, W, x.data() + n * in_img, one.data(), res.data() + n * out_img,
                   true);
          CHECK_MESSAGE(std::equal(one.begin(), one.end(), batch.begin() + n * out_img),
                        "image ", n, " alone differs from it in the batch");
        }
      // Image 5 against the reference (the batch path against it is in the cases above).
      std::vector<float> x_nchw(in_img), r_nchw(out_img), want_nchw(out_img), want(out_img);
      conv::nhwc_to_nchw(1, C, H, W, x.data() + 5 * in_img, x_nchw.data());
      conv::nhwc_to_nchw(1, OC, H, W, res.data() + 5 * out_img, r_nchw.data());
      conv::conv2d_reference_nchw(p, 1, H, W, x_nchw.data(), w.data(), bias.data(),
                                  r_nchw.data(), true, want_nchw.data());
      conv::nchw_to_nhwc(nullptr, 1, OC, H, W, want_nchw.data(), want.data());
      const double err =
          test::max_rel_diff(batch.data() + 5 * out_img, want.data(), out_img, 1e-3);
      CHECK_MESSAGE(err <= tolerance(9 * C), "max rel diff ", err);
    }
  }
}

TEST_CASE("conv: NCHW <-> NHWC layout changes are inverse and put channels last") {
  const int64_t N = 2, C = 5, H = 3, W = 4;
  std::vector<float> x(N * C * H * W), y(x.size()), z(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i);
  ThreadPool pool2(2);
  conv::nchw_to_nhwc(&pool2, N, C, H, W, x.data(), y.data());
  // y[n, h, w, c] = x[n, c, h, w]
  CHECK(y[((1 * H + 2) * W + 3) * C + 4] == x[((1 * C + 4) * H + 2) * W + 3]);
  conv::nhwc_to_nchw(N, C, H, W, y.data(), z.data());
  CHECK(z == x);
}
