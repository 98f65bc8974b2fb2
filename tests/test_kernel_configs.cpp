// Every kernel family's per-ISA config, called directly (not through the operators): the config
// is the one asked for, its name says its ISA, and each function pointer computes what the
// family's contract says, against the scalar reference. ISAs this CPU lacks are skipped.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/activation/gelu_config.hpp"
#include "kernels/attention/attention_config.hpp"
#include "kernels/gemm/gemm_config.hpp"
#include "kernels/norm/layer_norm.hpp"
#include "kernels/norm/layer_norm_config.hpp"
#include "kernels/peak/peak_config.hpp"
#include "kernels/conv/winograd_config.hpp"
#include "kernels/pool/pool_config.hpp"
#include "kernels/vmath/vec_math_config.hpp"
#include "test_util.hpp"

using namespace tern;

namespace {

// The ISAs to test directly; says which are skipped.
std::vector<Isa> isas_to_test() {
  for (Isa isa : kAllIsas)
    if (!isa_supported(isa)) MESSAGE("skipped: this CPU lacks ", isa_name(isa));
  return test::supported_isas();
}

// Variant names end in "__<isa>" plus optional feature suffixes (XNNPACK's convention):
// "f32_gemm_6x16__avx2_fma", "f32_pool_c16__avx512".
bool name_says_isa(const char* name, Isa isa) {
  const std::string n = name, tag = std::string("__") + isa_name(isa);
  const size_t at = n.rfind("__");
  return at != std::string::npos && n.compare(at, tag.size(), tag) == 0;
}

template <typename Config>
void check_identity(const Config& cfg, Isa isa) {
  CHECK(cfg.isa == isa);
  CHECK(name_says_isa(cfg.name, isa));
}

}  // namespace

TEST_CASE("kernel configs: each family's config(isa) is that ISA's and names it") {
  for (Isa isa : isas_to_test()) {
    CAPTURE(isa_name(isa));
    check_identity(gemm::gemm_config(isa), isa);
    check_identity(vmath::vec_math_config(isa), isa);
    check_identity(activation::gelu_config(isa), isa);
    check_identity(norm::layer_norm_config(isa), isa);
    check_identity(pool::pool_config(isa), isa);
    check_identity(conv::winograd_config(isa), isa);
    check_identity(attention::attention_config(isa), isa);
    check_identity(peak::peak_config(isa), isa);
  }
}

TEST_CASE("kernel configs: vmath exp/erf and gelu variants against the scalar reference") {
  std::vector<float> x = test::random_floats(5003, 21, -12.f, 12.f);
  for (float v : {0.f, -0.f, 0.875f, -0.875f, 4.f, -4.f, 80.f, -80.f}) x.push_back(v);
  const int64_t n = int64_t(x.size());
  std::vector<float> want_exp(n), want_erf(n), want_gelu(n);
  vmath::vec_math_config(Isa::scalar).exp(n, x.data(), want_exp.data());
  vmath::vec_math_config(Isa::scalar).erf(n, x.data(), want_erf.data());
  activation::gelu_config(Isa::scalar).gelu(n, x.data(), want_gelu.data());
  for (Isa isa : isas_to_test()) {
    CAPTURE(isa_name(isa));
    std::vector<float> y(n);
    vmath::vec_math_config(isa).exp(n, x.data(), y.data());
    for (int64_t i = 0; i < n; ++i) {
      CAPTURE(x[i]);
      REQUIRE(std::fabs(y[i] - want_exp[i]) <= 4e-7 * std::fabs(want_exp[i]));
    }
    vmath::vec_math_config(isa).erf(n, x.data(), y.data());
    for (int64_t i = 0; i < n; ++i) {
      CAPTURE(x[i]);
      REQUIRE(std::fabs(y[i] - want_erf[i]) <= 2e-7);
    }
    for (int64_t len : {int64_t(0), int64_t(1), int64_t(9), n}) {  // tails: exactly len written
      std::vector<float> g(n + 1, 55.f);
      activation::gelu_config(isa).gelu(len, x.data(), g.data());
      for (int64_t i = 0; i < len; ++i) REQUIRE(std::fabs(g[i] - want_gelu[i]) <= 1e-6);
      for (int64_t i = len; i <= n; ++i) REQUIRE(g[i] == 55.f);
    }
  }
}

TEST_CASE("kernel configs: layer_norm rows variants against the double reference") {
  for (Isa isa : isas_to_test())
    for (int64_t dim : {1, 5, 8, 16, 31, 33, 64, 768}) {
      CAPTURE(isa_name(isa));
      CAPTURE(dim);
      const int64_t rows = 4, ldx = dim + 2, ldy = dim + 1;
      const auto x = test::random_floats(rows * ldx, 40 + dim, -3.f, 3.f);
      const auto g = test::random_floats(dim, 41, 0.5f, 1.5f), b = test::random_floats(dim, 42);
      std::vector<float> y(rows * ldy, 9.f), ref(rows * ldy, 9.f);
      norm::layer_norm_config(isa).rows(rows, dim, x.data(), ldx, g.data(), b.data(), 1e-5f,
                                        y.data(), ldy);
      norm::layer_norm_reference(rows, dim, x.data(), ldx, g.data(), b.data(), 1e-5f, ref.data(),
                                 ldy);
      for (int64_t r = 0; r < rows; ++r) {
        CHECK(test::max_rel_diff(y.data() + r * ldy, ref.data() + r * ldy, dim, 1e-6) <= 5e-6);
        CHECK(y[r * ldy + dim] == 9.f);
      }
    }
}

TEST_CASE("kernel configs: pool max/sum variants equal the scalar ones bit for bit") {
  for (int64_t C : {1, 7, 8, 16, 33, 64, 100, 130}) {
    const int64_t taps = 5, rows = 6, ld = C + 3;
    const auto x = test::random_floats(taps * ld, 60 + C, -2.f, 2.f);
    std::vector<const float*> src;
    for (int64_t t = 0; t < taps; ++t) src.push_back(x.data() + t * ld);
    std::vector<float> want_max(C), want_sum(C);
    pool::pool_config(Isa::scalar).max(src.data(), taps, C, want_max.data());
    pool::pool_config(Isa::scalar).sum(x.data(), rows - 1, ld, C, want_sum.data());
    for (Isa isa : isas_to_test()) {
      CAPTURE(isa_name(isa));
      CAPTURE(C);
      std::vector<float> got(C + 1, 3.f);
      pool::pool_config(isa).max(src.data(), taps, C, got.data());
      CHECK(std::memcmp(got.data(), want_max.data(), C * sizeof(float)) == 0);
      CHECK(got[C] == 3.f);
      pool::pool_config(isa).sum(x.data(), rows - 1, ld, C, got.data());
      CHECK(std::memcmp(got.data(), want_sum.data(), C * sizeof(float)) == 0);
      CHECK(got[C] == 3.f);
    }
  }
}

TEST_CASE("kernel configs: Winograd input/output transforms equal the scalar ones bit for bit") {
  // One tile of a W=5 map whose left column is padding (x0 = -1) and whose top row is missing:
  // the transforms must read only the image, and every ISA must give the scalar variant's bits,
  // for F(4,3) (6x6 input tile, 36 points, 4x4 output) and F(2,3) (4x4, 16, 2x2).
  for (Isa isa : isas_to_test()) {
    CAPTURE(isa_name(isa));
    const int64_t block_n = conv::winograd_config(isa).block_n;
    CHECK(block_n >= 16);  // a task's filter block: whole vectors of output channels
    CHECK(block_n % 16 == 0);
  }
  // Bᵀ of each tile size (winograd_config.hpp), for the definition check below.
  const double BT4[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                            {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  const double BT2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  for (int tile : {4, 2}) {
    const int A = tile + 2, P = A * A, outs = tile * tile;
    for (int64_t C : {1, 7, 8, 16, 33, 64}) {
      CAPTURE(tile);
      CAPTURE(C);
      const int64_t W = 5, ldv = C + 2;
      const auto img = test::random_floats(A * W * C, 80 + C, -2.f, 2.f);
      const float* rows[6] = {nullptr};
      for (int i = 1; i < A; ++i) rows[i] = img.data() + i * W * C;
      const auto m = test::random_floats(P * ldv, 90 + C, -2.f, 2.f);
      const auto bias = test::random_floats(C, 95 + C, -1.f, 1.f);
      const auto res_img = test::random_floats(outs * C, 97 + C, -1.f, 1.f);
      const float* res[16];
      for (int k = 0; k < outs; ++k) res[k] = res_img.data() + k * C;
      auto run = [&](Isa isa, std::vector<float>& v, std::vector<float>& y) {
        v.assign(P * ldv, 5.f);
        y.assign(outs * C + 1, 3.f);
        float* dst[16];
        for (int k = 0; k < outs; ++k) dst[k] = k == 1 ? nullptr : y.data() + k * C;  // skipped
        const conv::WinogradTransforms& uk = conv::winograd_config(isa).tile(tile);
        uk.input(rows, -1, W, C, v.data(), ldv);
        uk.output(m.data(), ldv, C, bias.data(), dst, res, true);
      };
      std::vector<float> want_v, want_y;
      run(Isa::scalar, want_v, want_y);
      // The scalar variant against the definition: v = Bᵀ d B at point (1, 2), from the image.
      {
        auto bt = [&](int r, int c) { return tile == 4 ? BT4[r][c] : BT2[r][c]; };
        const int64_t c = C - 1;
        double want = 0;
        for (int i = 0; i < A; ++i)
          for (int j = 0; j < A; ++j) {
            const double d = (i >= 1 && j >= 1) ? rows[i][(j - 1) * C + c] : 0.0;
            want += bt(1, i) * d * bt(2, j);
          }
        CHECK(want_v[(A * 1 + 2) * ldv + c] == doctest::Approx(want).epsilon(1e-5));
      }
      CHECK(want_y[1 * C] == 3.f);  // the skipped pixel is not written
      CHECK(want_y[outs * C] == 3.f);
      CHECK(want_v[C] == 5.f);  // nothing between the planes either
      for (Isa isa : isas_to_test()) {
        CAPTURE(isa_name(isa));
        std::vector<float> v, y;
        run(isa, v, y);
        CHECK(std::memcmp(v.data(), want_v.data(), v.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(y.data(), want_y.data(), y.size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("kernel configs: attention gemm and softmax_row variants against the definitions") {
  for (Isa isa : isas_to_test()) {
    CAPTURE(isa_name(isa));
    const auto& cfg = attention::attention_config(isa);
    const int64_t nr = cfg.nr;
    CHECK(cfg.key_tile >= nr);
    CHECK(cfg.key_tile % nr == 0);  // the tiling pads key tiles to nr, never past key_tile
    // gemm: every row count up to 2 tiles, with and without c_scale.
    for (int64_t rows = 1; rows <= 17; ++rows)
      for (bool scaled : {false, true}) {
        CAPTURE(rows);
        const int64_t n = 2 * nr, k = 9, lda = k + 1, ldb = n + 3, ldc = n + 2;
        const auto a = test::random_floats(rows * lda, 70 + rows);
        const auto b = test::random_floats(k * ldb, 71);
        const auto sc = test::random_floats(rows, 72, 0.f, 1.f);
        auto c = test::random_floats(rows * ldc, 73);
        const auto c0 = c;
        cfg.gemm(rows, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc,
                 scaled ? sc.data() : nullptr);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < ldc; ++j) {
            if (j >= n) {
              REQUIRE(c[r * ldc + j] == c0[r * ldc + j]);
              continue;
            }
            double want = scaled ? double(sc[r]) * c0[r * ldc + j] : 0.0;
            for (int64_t i = 0; i < k; ++i) want += double(a[r * lda + i]) * b[i * ldb + j];
            REQUIRE(std::fabs(c[r * ldc + j] - want) <= 1e-5);
          }
      }
    // softmax_row: one online step from a previous state, and the first step.
    for (int64_t valid : {int64_t(1), nr - 1 > 0 ? nr - 1 : 1, nr, 2 * nr + 1}) {
      CAPTURE(valid);
      const int64_t n = (valid + nr - 1) / nr * nr;
      const auto s0 = test::random_floats(n, 80 + valid, -4.f, 4.f);
      for (float m_prev : {-std::numeric_limits<float>::infinity(), 1.5f}) {
        auto s = s0;
        float m = m_prev, l = m_prev == 1.5f ? 2.f : 0.f;
        const float l_prev = l, scale = 0.7f;
        const float corr = cfg.softmax_row(s.data(), n, valid, scale, &m, &l);
        double mx = m_prev;
        for (int64_t j = 0; j < valid; ++j) mx = std::max(mx, double(s0[j]) * scale);
        CHECK(m == doctest::Approx(mx).epsilon(1e-6));
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double e = j < valid ? std::exp(double(s0[j]) * scale - mx) : 0.0;
          REQUIRE(std::fabs(s[j] - e) <= 1e-6);
          sum += e;
        }
        const double want_corr = std::isinf(m_prev) ? 0.0 : std::exp(m_prev - mx);
        CHECK(std::fabs(corr - want_corr) <= 1e-6);
        CHECK(std::fabs(l - (l_prev * want_corr + sum)) <= 1e-5 * (1 + sum));
      }
    }
  }
}

TEST_CASE("kernel configs: attention transpose variants are the exact transpose") {
  // Rows (keys) and columns (head channels) around the 8x8 blocks, strided source and
  // destination; nothing outside [cols, rows] of the destination is written.
  for (Isa isa : isas_to_test()) {
    CAPTURE(isa_name(isa));
    const auto& cfg = attention::attention_config(isa);
    for (int64_t rows : {1, 7, 8, 9, 16, 23, 197})
      for (int64_t cols : {1, 5, 8, 13, 64}) {
        CAPTURE(rows);
        CAPTURE(cols);
        const int64_t lds = cols + 3, ldd = rows + 5;
        const auto src = test::random_floats(rows * lds, 60 + rows + cols);
        std::vector<float> dst(cols * ldd, 7.f);
        cfg.transpose(rows, cols, src.data(), lds, dst.data(), ldd);
        for (int64_t d = 0; d < cols; ++d)
          for (int64_t j = 0; j < ldd; ++j)
            REQUIRE(dst[d * ldd + j] == (j < rows ? src[j * lds + d] : 7.f));
      }
  }
}

TEST_CASE("kernel configs: gemm microkernel table and the FMA-peak loop") {
  for (Isa isa : isas_to_test()) {
    CAPTURE(isa_name(isa));
    const auto& g = gemm::gemm_config(isa);
    CHECK(g.mr >= 1);
    CHECK(g.mr <= gemm::kMaxMr);
    for (int r = 0; r < g.mr; ++r) CHECK((g.ukernel[r] != nullptr));
    // FLOPs reported are iterations × chains × lanes × 2, and the loop ran (sink is finite and
    // moved away from its start).
    float sink = 0;
    const int64_t f1 = peak::peak_config(isa).fma_loop(1000, &sink);
    const int64_t f2 = peak::peak_config(isa).fma_loop(2000, &sink);
    CHECK(f1 > 0);
    CHECK(f2 == 2 * f1);
    CHECK(std::isfinite(sink));
    CHECK(sink != 0.f);
  }
}
