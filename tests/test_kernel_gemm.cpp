// GEMM (kernels/gemm): every ISA's microkernels and the operator against gemm_reference (double
// accumulation) and against Eigen in double; edge shapes around every block size, all epilogues,
// aliased residual, both B layouts, unpacked B, and bit-identical results for 1, 2, 3 threads.
#include <Eigen/Dense>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "engine/core/thread_pool.hpp"
#include "kernels/gemm/gemm.hpp"
#include "kernels/gemm/gemm_config.hpp"
#include "test_util.hpp"

using namespace tern;
using namespace tern::gemm;

namespace {

const char* act_name(Activation a) {
  switch (a) {
    case Activation::none: return "none";
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
    case Activation::quick_gelu: return "quick_gelu";
  }
  return "?";
}

struct Case {
  int64_t M, N, K, lda, ldb, ldc;
  bool b_is_nk = false;
  bool bias = false, residual = false, alias = false;  // alias: residual is C itself
  Activation act = Activation::none;
  bool unpacked = false;
};

std::string describe(const Case& c, Isa isa) {
  std::ostringstream os;
  os << isa_name(isa) << " M=" << c.M << " N=" << c.N << " K=" << c.K << " lda=" << c.lda
     << " ldb=" << c.ldb << " ldc=" << c.ldc << " b_is_nk=" << c.b_is_nk << " bias=" << c.bias
     << " residual=" << c.residual << " alias=" << c.alias << " act=" << act_name(c.act)
     << " unpacked=" << c.unpacked;
  return os.str();
}

// Error bound for a float dot product of K terms (γ_K · Σ|a·b|, the classic worst case) plus the
// roundings of the epilogue; GELU's slope is at most 1.13 and the vector form adds 1e-6.
double bound(double abs_dot, double abs_extra, int64_t K, Activation act) {
  const double u = std::ldexp(1.0, -24);
  const double gk = (K + 3) * u / (1 - (K + 3) * u);
  double b = gk * (abs_dot + abs_extra) + 1e-30;
  // QuickGELU's slope is at most 1.1 too; its vector form rounds exp and one division.
  if (act == Activation::gelu || act == Activation::quick_gelu)
    b = 1.13 * b + 1e-6 + u * (abs_dot + abs_extra);
  return b;
}

double act_exact(double v, Activation act) {
  if (act == Activation::relu) return v > 0 ? v : 0;
  if (act == Activation::gelu) return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  if (act == Activation::quick_gelu) return v / (1 + std::exp(-1.702 * v));
  return v;
}

// Runs one case for one ISA, checks every element against an exact (double) evaluation within the
// rounding bound and against gemm_reference; returns C.
std::vector<float> run_case(const Case& c, Isa isa, Parallel* par, uint64_t seed,
                            bool check = true) {
  const auto A = test::random_floats(size_t(std::max<int64_t>(c.M * c.lda, 1)), seed);
  const int64_t b_rows = c.b_is_nk ? c.N : c.K;
  const auto B = test::random_floats(size_t(std::max<int64_t>(b_rows * c.ldb, 1)), seed + 1);
  const auto bias = test::random_floats(size_t(c.N), seed + 2);
  const auto res = test::random_floats(size_t(std::max<int64_t>(c.M * c.ldc, 1)), seed + 3, -2, 2);
  const float sentinel = 1234.5f;
  std::vector<float> C(size_t(std::max<int64_t>(c.M * c.ldc, 1)), sentinel);
  std::vector<float> Rsep = res;
  Epilogue ep;
  ep.bias = c.bias ? bias.data() : nullptr;
  ep.act = c.act;
  if (c.residual) {
    if (c.alias) {
      for (int64_t m = 0; m < c.M; ++m)
        std::memcpy(&C[m * c.ldc], &res[m * c.ldc], c.N * sizeof(float));
      ep.residual = C.data();
    } else {
      ep.residual = Rsep.data();
    }
    ep.ldr = c.ldc;
  }
  if (c.unpacked) {
    gemm_unpacked(isa, par, c.M, c.N, c.K, A.data(), c.lda, B.data(), c.ldb, c.b_is_nk, C.data(),
                  c.ldc, ep);
  } else {
    const PackedB pb = PackedB::pack(isa, B.data(), c.K, c.N, c.ldb, c.b_is_nk);
    REQUIRE(pb.isa() == isa);
    gemm::gemm(par, c.M, A.data(), c.lda, pb, C.data(), c.ldc, ep);
  }
  if (!check) return C;
  std::vector<float> ref(size_t(std::max<int64_t>(c.M * c.ldc, 1)), 0.f);
  Epilogue ep_ref = ep;
  ep_ref.residual = c.residual ? res.data() : nullptr;
  gemm_reference(c.M, c.N, c.K, A.data(), c.lda, B.data(), c.ldb, c.b_is_nk, ref.data(), c.ldc,
                 ep_ref);
  int64_t bad = 0;
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = 0; n < c.ldc; ++n) {
      const float got = C[m * c.ldc + n];
      if (n >= c.N) {  // padding between rows must not be touched
        if (got != sentinel && bad++ < 3)
          FAIL_CHECK(describe(c, isa) << ": wrote padding at " << m << "," << n);
        continue;
      }
      double dot = 0, abs_dot = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double p = double(A[m * c.lda + k]) *
                         double(c.b_is_nk ? B[n * c.ldb + k] : B[k * c.ldb + n]);
        dot += p;
        abs_dot += std::fabs(p);
      }
      const double extra = (c.bias ? bias[n] : 0.0) + (c.residual ? res[m * c.ldc + n] : 0.0);
      const double exact = act_exact(dot + extra, c.act);
      const double tol = bound(abs_dot, std::fabs(extra), c.K, c.act);
      const double r = ref[m * c.ldc + n];
      if ((std::fabs(got - exact) > tol || std::fabs(got - r) > 2 * tol) && bad++ < 3)
        FAIL_CHECK(describe(c, isa) << ": C[" << m << "," << n << "] = " << got << ", exact "
                                    << exact << ", reference " << r << ", bound " << tol);
    }
  }
  CHECK(bad == 0);
  return C;
}

Case plain(int64_t M, int64_t N, int64_t K) { return Case{M, N, K, K, N, N}; }

}  // namespace

TEST_CASE("gemm microkernels: every mr <= MR and nr <= NR, init/bias, no writes outside the tile") {
  for (Isa isa : test::supported_isas()) {
    const GemmConfig& cfg = gemm_config(isa);
    CAPTURE(cfg.name);
    const int64_t kc = 37, ldc = cfg.nr + 5;
    std::vector<float, std::allocator<float>> bstore(kc * cfg.nr + 16);
    float* b = bstore.data() + (16 - (reinterpret_cast<uintptr_t>(bstore.data()) / 4) % 16) % 16;
    const auto bv = test::random_floats(kc * cfg.nr, 3);
    std::copy(bv.begin(), bv.end(), b);
    const int64_t lda = kc + 3;  // A is read in place, rows lda apart
    const auto a = test::random_floats(cfg.mr * lda, 4);
    const auto init = test::random_floats(cfg.mr * ldc, 5);
    const auto bias = test::random_floats(cfg.nr, 6);
    for (int mr = 1; mr <= cfg.mr; ++mr) {
      for (int64_t nr = 1; nr <= cfg.nr; ++nr) {
        for (int with_init = 0; with_init < 2; ++with_init) {
          std::vector<float> c((cfg.mr + 1) * ldc, -7.f);
          cfg.ukernel[mr - 1](kc, a.data(), lda, b, c.data(), ldc, nr,
                              with_init ? init.data() : nullptr, ldc,
                              with_init ? bias.data() : nullptr, Activation::relu,
                              with_init ? b : nullptr);  // prefetch hint: results unchanged
          for (int64_t r = 0; r <= cfg.mr; ++r)
            for (int64_t j = 0; j < ldc; ++j) {
              const float got = c[r * ldc + j];
              if (r >= mr || j >= nr) {
                if (got != -7.f)
                  FAIL_CHECK("mr=" << mr << " nr=" << nr << " wrote (" << r << "," << j << ")");
                continue;
              }
              double acc = with_init ? init[r * ldc + j] : 0.0;
              for (int64_t k = 0; k < kc; ++k) acc += double(a[r * lda + k]) * b[k * cfg.nr + j];
              if (with_init) acc += bias[j];
              acc = acc > 0 ? acc : 0;
              if (std::fabs(got - acc) > 1e-5)
                FAIL_CHECK("mr=" << mr << " nr=" << nr << " init=" << with_init << " c(" << r << ","
                                 << j << ")=" << got << " expected " << acc);
            }
        }
      }
    }
  }
}

TEST_CASE("gemm: edge shapes around MR, NR and KC, odd strides, both B layouts") {
  for (Isa isa : test::supported_isas()) {
    const GemmConfig& cfg = gemm_config(isa);
    CAPTURE(cfg.name);
    uint64_t seed = 100;
    const int64_t MR = cfg.mr, NR = cfg.nr, KC = cfg.kc;
    std::vector<Case> cases;
    for (int64_t M = 1; M <= MR + 1; ++M) cases.push_back(plain(M, NR + 3, 19));
    for (int64_t N : {int64_t(1), NR - 1, NR, NR + 1, 2 * NR + 3})
      cases.push_back(plain(MR + 1, N, 23));
    for (int64_t K : {int64_t(1), KC - 1, KC, KC + 1, 2 * KC + 5})
      cases.push_back(plain(3, NR + 5, K));
    cases.push_back(plain(1, 1, 1));
    cases.push_back(plain(1, 300, 70));   // M = 1
    cases.push_back(plain(77, 1, 130));   // N = 1
    cases.push_back(plain(45, 50, 0));    // K = 0: C = epilogue only
    for (Case c : cases) {
      for (int layout = 0; layout < 2; ++layout) {
        c.b_is_nk = layout == 1;
        c.lda = c.K + 3;                      // odd leading dimensions
        c.ldb = (c.b_is_nk ? c.K : c.N) + 1;
        c.ldc = c.N + 5;
        run_case(c, isa, nullptr, seed++);
      }
    }
  }
}

TEST_CASE("gemm: every epilogue, residual separate and aliasing C, over several K blocks") {
  for (Isa isa : test::supported_isas()) {
    const GemmConfig& cfg = gemm_config(isa);
    CAPTURE(cfg.name);
    uint64_t seed = 500;
    for (Activation act :
         {Activation::none, Activation::relu, Activation::gelu, Activation::quick_gelu})
      for (int bias = 0; bias < 2; ++bias)
        for (int residual = 0; residual < 3; ++residual) {
          Case c{cfg.mr * 2 + 1, cfg.nr * 2 + 7, cfg.kc * 2 + 3, 0, 0, 0};
          c.lda = c.K + 1;
          c.ldb = c.N;
          c.ldc = c.N + 3;
          c.bias = bias;
          c.residual = residual > 0;
          c.alias = residual == 2;
          c.act = act;
          run_case(c, isa, nullptr, seed++);
          c.K = 5;  // a single K block
          c.lda = 5;
          run_case(c, isa, nullptr, seed++);
        }
  }
}

TEST_CASE("gemm: seeded random shapes, packed and unpacked, with threads") {
  ThreadPool pool(2);
  std::mt19937_64 rng(2024);
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    for (int i = 0; i < 12; ++i) {
      Case c;
      c.M = 1 + int64_t(rng() % 90);
      c.N = 1 + int64_t(rng() % 120);
      c.K = 1 + int64_t(rng() % 600);
      c.b_is_nk = rng() % 2;
      c.lda = c.K + int64_t(rng() % 4);
      c.ldb = (c.b_is_nk ? c.K : c.N) + int64_t(rng() % 4);
      c.ldc = c.N + int64_t(rng() % 4);
      c.bias = rng() % 2;
      c.residual = rng() % 2;
      c.alias = c.residual && rng() % 2;
      c.act = Activation(rng() % 3);
      c.unpacked = rng() % 2;
      run_case(c, isa, i % 2 ? &pool : nullptr, 900 + i);
    }
  }
}

TEST_CASE("gemm: agrees with Eigen (double) on larger products") {
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    const int64_t M = 67, N = 150, K = 530;
    const auto a = test::random_floats(M * K, 71), b = test::random_floats(K * N, 72);
    Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> Am(
        a.data(), M, K),
        Bm(b.data(), K, N);
    const Eigen::MatrixXd Cd = Am.cast<double>() * Bm.cast<double>();
    const Eigen::MatrixXd absd = Am.cast<double>().cwiseAbs() * Bm.cast<double>().cwiseAbs();
    std::vector<float> c(M * N);
    gemm::gemm(nullptr, M, a.data(), K, PackedB::pack(isa, b.data(), K, N, N, false), c.data(), N);
    std::vector<float> cu(M * N);
    gemm_unpacked(isa, nullptr, M, N, K, a.data(), K, b.data(), N, false, cu.data(), N);
    int bad = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const double tol = bound(absd(m, n), 0, K, Activation::none);
        if (std::fabs(c[m * N + n] - Cd(m, n)) > tol && bad++ < 3)
          FAIL_CHECK("packed C(" << m << "," << n << ")=" << c[m * N + n] << " eigen " << Cd(m, n));
        if (cu[m * N + n] != c[m * N + n] && bad++ < 3)
          FAIL_CHECK("unpacked differs from packed at (" << m << "," << n << ")");
      }
    CHECK(bad == 0);
  }
}

TEST_CASE("gemm: attention shapes through gemm_unpacked (QK^T and PV)") {
  ThreadPool pool(2);
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    const int64_t T = 131, D = 64;
    Case qk{T, T, D, 3 * D, 3 * D, T + 1};  // Q and K rows inside a [T, 3D] qkv buffer
    qk.b_is_nk = true;
    qk.unpacked = true;
    run_case(qk, isa, &pool, 1);
    Case pv{T, D, T, T + 1, 3 * D, 2 * D};  // V rows inside qkv, output into a [T, 2D] buffer
    pv.unpacked = true;
    run_case(pv, isa, &pool, 2);
  }
}

TEST_CASE("gemm: results are bit-identical for 1, 2 and 3 threads") {
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    for (bool unpacked : {false, true}) {
      Case c{203, 301, 517, 517, 301, 301};
      c.bias = c.residual = true;
      c.act = Activation::gelu;
      c.unpacked = unpacked;
      const auto one = run_case(c, isa, nullptr, 42, false);
      for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        const auto many = run_case(c, isa, &pool, 42, false);
        CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("gemm: PackedB rejects bad arguments and records its ISA") {
  const std::vector<float> b(12, 1.f);
  CHECK_THROWS_AS(PackedB::pack(Isa::scalar, b.data(), -1, 3, 3, false), std::invalid_argument);
  CHECK_THROWS_AS(PackedB::pack(Isa::scalar, b.data(), 4, 3, 2, false), std::invalid_argument);
  CHECK_THROWS_AS(PackedB::pack(Isa::scalar, b.data(), 4, 3, 3, true), std::invalid_argument);
  CHECK_THROWS_AS(PackedB::pack(Isa::scalar, nullptr, 4, 3, 3, false), std::invalid_argument);
  for (Isa isa : test::supported_isas()) {
    const PackedB p = PackedB::pack(isa, b.data(), 4, 3, 3, false);
    CHECK(p.isa() == isa);
    CHECK(p.K() == 4);
    CHECK(p.N() == 3);
    CHECK(!p.empty());
  }
}

TEST_CASE("gemm: PackedB::pack_all packs each weight as pack() does, in one block that outlives the vector") {
  // Shapes across NR and KC tails, both layouts.
  struct Src {
    int64_t K, N;
    bool nk;
  };
  const std::vector<Src> shapes = {{5, 3, false}, {1100, 40, true}, {64, 128, false}, {7, 33, true}};
  std::vector<std::vector<float>> data;
  std::vector<PackedB::Source> sources;
  uint64_t seed = 40;
  for (const Src& s : shapes) {
    data.push_back(test::random_floats(s.K * s.N, seed++));
    sources.push_back({data.back().data(), s.K, s.N, s.nk ? s.K : s.N, s.nk});
  }
  for (Isa isa : test::supported_isas()) {
    INFO(isa_name(isa));
    PackedB kept;
    {
      std::vector<PackedB> all = PackedB::pack_all(isa, sources);
      REQUIRE(all.size() == shapes.size());
      for (size_t i = 0; i < all.size(); ++i) {
        const PackedB one = PackedB::pack(isa, data[i].data(), shapes[i].K, shapes[i].N,
                                          sources[i].ldb, shapes[i].nk);
        CHECK(all[i].isa() == isa);
        CHECK(all[i].K() == shapes[i].K);
        CHECK(all[i].N() == shapes[i].N);
        REQUIRE(all[i].bytes() == one.bytes());
        CHECK(std::memcmp(all[i].data(), one.data(), one.bytes()) == 0);
        if (i > 0) CHECK(all[i].data() == all[i - 1].data() + all[i - 1].bytes() / sizeof(float));
      }
      kept = std::move(all[1]);
    }
    // The block lives while any of its PackedBs does (ASan checks the read).
    const int64_t M = 3, K = shapes[1].K, N = shapes[1].N;
    const auto a = test::random_floats(M * K, 77);
    std::vector<float> c(M * N), want(M * N);
    gemm::gemm(nullptr, M, a.data(), K, kept, c.data(), N);
    const PackedB ref = PackedB::pack(isa, data[1].data(), K, N, K, true);
    gemm::gemm(nullptr, M, a.data(), K, ref, want.data(), N);
    CHECK(c == want);
  }
  auto bad = sources;
  bad.push_back({nullptr, 4, 3, 3, false});
  CHECK_THROWS_AS(PackedB::pack_all(Isa::scalar, bad), std::invalid_argument);
  CHECK(PackedB::pack_all(Isa::scalar, {}).empty());
}

TEST_CASE("gemm: relu keeps NaN (as torch.relu), so a NaN weight cannot hide in a finite result") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t M = 7, N = 19, K = 5;
  auto a = test::random_floats(M * K, 11);
  auto b = test::random_floats(K * N, 12);
  b[2 * N + 3] = nan;  // column 3 of every row becomes NaN
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    const PackedB pb = PackedB::pack(isa, b.data(), K, N, N, false);
    std::vector<float> c(M * N);
    Epilogue ep;
    ep.act = Activation::relu;
    gemm::gemm(nullptr, M, a.data(), K, pb, c.data(), N, ep);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        CAPTURE(m);
        CAPTURE(n);
        if (n == 3)
          CHECK(std::isnan(c[m * N + n]));
        else
          CHECK(c[m * N + n] >= 0.f);
      }
  }
}

TEST_CASE("gemm: a row's result does not depend on the other rows (batching changes no bit)") {
  // Each row of C is the same sequence of operations whether it falls in a full register panel or
  // in the partial last one, and whatever M the call has: a model gives one input the same
  // embedding alone or in a batch. Rows 0..M of a 1000-row product against the same rows computed
  // by calls with M = 1..2·MR+1 starting at several offsets.
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    const int64_t M = 1000, N = 77, K = 601;
    const auto A = test::random_floats(M * K, 7);
    const auto Bw = test::random_floats(K * N, 8);
    const auto bias = test::random_floats(N, 9);
    const PackedB pb = PackedB::pack(isa, Bw.data(), K, N, N, false);
    Epilogue ep;
    ep.bias = bias.data();
    ep.act = Activation::gelu;
    std::vector<float> all(M * N);
    ThreadPool pool(2);
    gemm::gemm(&pool, M, A.data(), K, pb, all.data(), N, ep);
    const int64_t mr = rows_per_panel(isa);
    for (int64_t start : {int64_t{0}, int64_t{5}, int64_t{311}, M - 2 * mr - 1})
      for (int64_t m = 1; m <= 2 * mr + 1; ++m) {
        std::vector<float> part(m * N);
        gemm::gemm(nullptr, m, A.data() + start * K, K, pb, part.data(), N, ep);
        CHECK_MESSAGE(
            std::memcmp(part.data(), all.data() + start * N, part.size() * sizeof(float)) == 0,
            "rows " << start << ".." << start + m);
      }
  }
}

TEST_CASE("gemm_columns: a range of column panels gives gemm()'s values there and writes nothing else") {
  // A fused QKV projection computes the keys and values of every token and the queries of one:
  // columns [n0, n1) must be bit for bit what the whole product gives them (bias, residual and
  // activation included, over several K blocks), for any thread count, with C untouched elsewhere.
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    const int64_t nr = columns_per_panel(isa), M = 29, N = 5 * nr + 3, K = 1100;
    const auto A = test::random_floats(M * K, 17);
    const auto Bw = test::random_floats(N * K, 18);
    const auto bias = test::random_floats(N, 19);
    const auto res = test::random_floats(M * N, 20);
    const PackedB pb = PackedB::pack(isa, Bw.data(), K, N, K, true);
    Epilogue ep;
    ep.bias = bias.data();
    ep.residual = res.data();
    ep.ldr = N;
    ep.act = Activation::gelu;
    std::vector<float> full(M * N);
    gemm::gemm(nullptr, M, A.data(), K, pb, full.data(), N, ep);
    ThreadPool pool(3);
    for (Parallel* par : {static_cast<Parallel*>(nullptr), static_cast<Parallel*>(&pool)})
      for (auto [n0, n1] : {std::pair<int64_t, int64_t>{0, nr}, {nr, N}, {2 * nr, 4 * nr + 1},
                            {0, N}, {3 * nr, 3 * nr}}) {
        CAPTURE(n0);
        CAPTURE(n1);
        std::vector<float> c(M * N, 777.f);
        gemm::gemm_columns(par, M, A.data(), K, pb, n0, n1, c.data(), N, ep);
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            const float want = n >= n0 && n < n1 ? full[m * N + n] : 777.f;
            if (std::memcmp(&c[m * N + n], &want, sizeof(float)) != 0) {
              FAIL_CHECK("row " << m << " column " << n << ": " << c[m * N + n] << " vs " << want);
              m = M;
              break;
            }
          }
      }
    std::vector<float> c(M * N);
    CHECK_THROWS_AS(gemm::gemm_columns(nullptr, M, A.data(), K, pb, 1, N, c.data(), N, ep),
                    std::invalid_argument);
    CHECK_THROWS_AS(gemm::gemm_columns(nullptr, M, A.data(), K, pb, 0, N + 1, c.data(), N, ep),
                    std::invalid_argument);
    CHECK_THROWS_AS(gemm::gemm_columns(nullptr, M, A.data(), K, pb, nr, 0, c.data(), N, ep),
                    std::invalid_argument);
  }
}
