// tern_kernel_bench: times one kernel on given shapes with the active ISA (TERN_ISA caps it),
// measures the FMA peak of the same ISA and thread count in the same run, and times Eigen's GEMM on
// the same shapes as a baseline. A developer tool, not part of the shipped tern executable.
//
//   tern_kernel_bench gemm|gemm_unpacked [--shape MxNxK ...] [--threads N] [--iters N] [--json]
//   tern_kernel_bench conv [--conv NxHxWxCxOCxKxS ...] [--threads N] [--iters N] [--json]
//   tern_kernel_bench attention [--attn BxTxHxD ...] [--threads N] [--iters N] [--json]
//
// Per shape, Tern and Eigen run alternately (so both see the same interference from the rest of
// the machine): GFLOP/s (2·M·N·K / time) of the fastest run, as the peak is the fastest of its
// runs, the fraction of peak, the median run's GFLOP/s, Eigen's GFLOP/s (single-threaded: Debian's
// Eigen is built without OpenMP; compiled for AVX2 + FMA and reported only where the CPU has
// them). --json prints one object per shape, one per line: kernel, isa, threads, M, N, K, iters,
// best_ms, median_ms, gflops (best), median_gflops, peak_gflops, fraction_of_peak (best),
// eigen_gflops (best), eigen_threads, speedup_vs_eigen (best over best).
// conv: the convolution as the model runs it (ConvAlgo::automatic: Winograd F(4,3) or F(2,3)
// where winograd_tile picks it; the table's algo: wino-f4, wino-f2 or gemm) alternately with the
// im2col + GEMM path on the same shape as the baseline; GFLOP/s counts the direct convolution's
// 2·N·OH·OW·OC·C·K·K, so Winograd can exceed the FMA peak. JSON: kernel, algo (winograd or gemm),
// winograd_tile (4, 2 or 0), isa, threads, N, H, W, C, OC, k, stride, best_ms, median_ms, gflops,
// peak_gflops, fraction_of_peak, gemm_path_ms, speedup_vs_gemm_path.
// attention: self-attention over B sequences of T tokens, H heads of D channels, laid out as the
// encoders run it (q, k, v side by side in one [B·T, 3·H·D] buffer); GFLOP/s counts the two
// matmuls, 4·B·H·T²·D (the softmax's exps are left out, as in the models' FLOP counts). No
// baseline. JSON: kernel, isa, threads, B, T, H, D, iters, best_ms, median_ms, gflops,
// median_gflops, peak_gflops, fraction_of_peak.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench/kernels/eigen_gemm.hpp"
#include "engine/core/cpu.hpp"
#include "engine/core/error.hpp"
#include "engine/core/thread_pool.hpp"
#include "kernels/attention/attention.hpp"
#include "kernels/conv/conv.hpp"
#include "kernels/gemm/gemm.hpp"
#include "kernels/peak/peak.hpp"

namespace tern::bench {
namespace {

const char kHelp[] =
    "usage: tern_kernel_bench gemm|gemm_unpacked [--shape MxNxK ...] [--threads N] [--iters N]\n"
    "                         [--json]\n"
    "       tern_kernel_bench conv [--conv NxHxWxCxOCxKxS ...] [--threads N] [--iters N] [--json]\n"
    "       tern_kernel_bench attention [--attn BxTxHxD ...] [--threads N] [--iters N] [--json]\n"
    "Times C[M,N] = A[M,K]·B[K,N] with the active ISA (TERN_ISA caps it) against this machine's\n"
    "FMA peak (measured in the same run, fastest of 10) and Eigen's GEMM, run alternately with\n"
    "Tern's. Reports the fastest run's GFLOP/s (and the median's).\n"
    "gemm: B packed once beforehand; gemm_unpacked: B packed inside every call.\n"
    "Default shapes: squares 256..2048 and model shapes.\n"
    "conv: the convolution as models run it (Winograd F(4,3) or F(2,3) for the 3x3 stride-1\n"
    "convs it picks) against the im2col + GEMM path, alternately; GFLOP/s of the direct\n"
    "convolution.\n"
    "Default: ResNet50's convolutions at batch 1 (pad k/2).\n"
    "attention: B sequences of T tokens, H heads of D channels, as the encoders run it;\n"
    "GFLOP/s of its two matmuls (4·B·H·T²·D). Default: DistilBERT's and ViT-B/16's shapes.\n"
    "  --threads N   threads for Tern (default 1; Eigen runs on one)\n"
    "  --iters N     timed runs per shape, each (default: enough for about 0.5 s of Tern)\n"
    "  --json        one JSON object per shape\n";

struct Shape {
  int64_t M, N, K;
};

// "AxBx...": exactly names.size() positive sizes up to 65536 (names: "MxNxK" and the like, for
// the message), else a one-line error naming the flag.
std::vector<int64_t> parse_sizes(const char* flag, const std::string& s, const std::string& names) {
  const size_t n = size_t(std::count(names.begin(), names.end(), 'x')) + 1;
  std::vector<int64_t> v;
  size_t at = 0;
  while (at <= s.size() && v.size() < n) {
    const size_t end = std::min(s.find('x', at), s.size());
    const std::string part = s.substr(at, end - at);
    if (part.empty() || part.size() > 5 || part.find_first_not_of("0123456789") != part.npos) break;
    v.push_back(std::stoll(part));
    at = end + 1;
  }
  if (v.size() != n || at != s.size() + 1 || *std::min_element(v.begin(), v.end()) <= 0 ||
      *std::max_element(v.begin(), v.end()) > 65536)
    fail(flag, " '", s, "': expected ", names, " with positive sizes up to 65536");
  return v;
}

Shape parse_shape(const std::string& s) {
  const auto v = parse_sizes("--shape", s, "MxNxK");
  return {v[0], v[1], v[2]};
}

struct ConvShape {
  int64_t N, H, W, C, OC, k, s;
};

ConvShape parse_conv(const std::string& s) {
  const auto v = parse_sizes("--conv", s, "NxHxWxCxOCxKxS");
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
}

int parse_int(const std::string& flag, const std::string& v, int lo, int hi) {
  try {
    size_t used = 0;
    const long x = std::stol(v, &used);
    if (used == v.size() && x >= lo && x <= hi) return int(x);
  } catch (const std::exception&) {
  }
  fail(flag, " '", v, "': expected an integer in [", lo, ", ", hi, "]");
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Timing {
  double best = 0, median = 0;
};

Timing timing(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return {t.front(), t[t.size() / 2]};
}

// Runs fn and baseline (may be empty) alternately, iters times each after one warm-up run
// (iters = 0: as many as fit in about 0.5 s of fn, at least 3); returns their timings.
std::pair<Timing, Timing> time_alternately(const std::function<void()>& fn,
                                           const std::function<void()>& baseline, int& iters) {
  auto timed = [](const std::function<void()>& f) {
    const double t0 = now_s();
    f();
    return std::max(now_s() - t0, 1e-9);
  };
  fn();  // warm-up: caches, page faults, thread wake-up
  if (baseline) baseline();
  if (iters == 0) iters = int(std::clamp(0.5 / timed(fn), 3.0, 1000.0));
  std::vector<double> t, tb;
  for (int i = 0; i < iters; ++i) {
    t.push_back(timed(fn));
    if (baseline) tb.push_back(timed(baseline));
  }
  return {timing(t), baseline ? timing(tb) : Timing{}};
}

struct AttnShape {
  int64_t B, T, H, D;
};

AttnShape parse_attn(const std::string& s) {
  const auto v = parse_sizes("--attn", s, "BxTxHxD");
  return {v[0], v[1], v[2], v[3]};
}

int bench_attention(std::vector<AttnShape> shapes, int threads, int iters_opt, bool json) {
  if (shapes.empty())  // DistilBERT / BERT-base (16 and 128 tokens), ViT-B/16 (197 tokens)
    shapes = {{1, 16, 12, 64}, {8, 16, 12, 64},  {1, 128, 12, 64},
              {8, 128, 12, 64}, {1, 197, 12, 64}, {8, 197, 12, 64}};
  const Isa isa = active_isa();
  ThreadPool pool(threads);
  const double peak = peak::measure_fma_peak_gflops(isa, threads);
  if (!json)
    std::printf(
        "kernel attention, isa %s, threads %d, FMA peak %.1f GFLOP/s\n"
        "GFLOP/s of the two matmuls (4·B·H·T²·D), fastest run (median in brackets)\n"
        "%-18s %9s %9s %7s %9s\n",
        isa_name(isa), threads, peak, "B x T x H x D", "best ms", "GFLOP/s", "peak", "(median)");
  for (const AttnShape& s : shapes) {
    const int64_t D = s.H * s.D, rows = s.B * s.T;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> qkv(static_cast<size_t>(rows * 3 * D)), out(static_cast<size_t>(rows * D));
    for (auto& v : qkv) v = dist(rng);
    attention::Params p;
    p.batch = s.B, p.seq_len = s.T, p.heads = s.H, p.head_dim = s.D;
    p.q = qkv.data(), p.k = qkv.data() + D, p.v = qkv.data() + 2 * D;
    p.ld_q = p.ld_k = p.ld_v = 3 * D;
    p.seq_stride = s.T * 3 * D;
    p.out = out.data(), p.ld_out = D, p.out_seq_stride = s.T * D;
    p.scale = 1.f / std::sqrt(float(s.D));
    int iters = iters_opt;
    const Timing t =
        time_alternately([&] { attention::attention(isa, &pool, p); }, {}, iters).first;
    const double flop = 4.0 * s.B * s.H * double(s.T) * double(s.T) * s.D;
    const double gflops = flop / t.best * 1e-9, median_gflops = flop / t.median * 1e-9;
    if (json) {
      nlohmann::json j;
      j["kernel"] = "attention";
      j["isa"] = isa_name(isa);
      j["threads"] = threads;
      j["B"] = s.B, j["T"] = s.T, j["H"] = s.H, j["D"] = s.D;
      j["iters"] = iters;
      j["best_ms"] = t.best * 1e3;
      j["median_ms"] = t.median * 1e3;
      j["gflops"] = gflops;
      j["median_gflops"] = median_gflops;
      j["peak_gflops"] = peak;
      j["fraction_of_peak"] = gflops / peak;
      std::printf("%s\n", j.dump().c_str());
    } else {
      char name[96], median[32];
      std::snprintf(name, sizeof name, "%lldx%lldx%lldx%lld", (long long)s.B, (long long)s.T,
                    (long long)s.H, (long long)s.D);
      std::snprintf(median, sizeof median, "(%.1f)", median_gflops);
      std::printf("%-18s %9.3f %9.1f %6.1f%% %9s\n", name, t.best * 1e3, gflops,
                  100 * gflops / peak, median);
    }
    std::fflush(stdout);
  }
  return 0;
}

int bench_conv(std::vector<ConvShape> convs, int threads, int iters_opt, bool json) {
  if (convs.empty())  // ResNet50 v1.5 at 224, batch 1
    convs = {{1, 224, 224, 3, 64, 7, 2},  {1, 56, 56, 64, 64, 1, 1},   {1, 56, 56, 64, 64, 3, 1},
             {1, 56, 56, 64, 256, 1, 1},  {1, 56, 56, 256, 64, 1, 1},  {1, 56, 56, 128, 128, 3, 2},
             {1, 28, 28, 128, 128, 3, 1}, {1, 28, 28, 128, 512, 1, 1}, {1, 28, 28, 256, 256, 3, 2},
             {1, 14, 14, 256, 256, 3, 1}, {1, 14, 14, 256, 1024, 1, 1},
             {1, 14, 14, 512, 512, 3, 2}, {1, 7, 7, 512, 512, 3, 1},   {1, 7, 7, 512, 2048, 1, 1}};
  const Isa isa = active_isa();
  ThreadPool pool(threads);
  const double peak = peak::measure_fma_peak_gflops(isa, threads);
  if (!json)
    std::printf(
        "kernel conv, isa %s, threads %d, FMA peak %.1f GFLOP/s; baseline: the im2col + GEMM path\n"
        "GFLOP/s of the direct convolution, fastest run; the two paths alternate\n"
        "%-26s %-9s %9s %9s %7s %11s %8s\n",
        isa_name(isa), threads, peak, "NxHxWxCxOCxKxS", "algo", "best ms", "GFLOP/s", "peak",
        "GEMM-path ms", "speedup");
  for (const ConvShape& s : convs) {
    conv::ConvParams p{s.C, s.OC, s.k, s.k, s.s, s.k / 2};
    const int64_t OH = conv::conv_out_size(s.H, s.k, s.s, s.k / 2);
    const int64_t OW = conv::conv_out_size(s.W, s.k, s.s, s.k / 2);
    if (OH <= 0 || OW <= 0) fail("--conv: the kernel does not fit the map");
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> x(s.N * s.H * s.W * s.C), w(s.OC * s.C * s.k * s.k), b(s.OC),
        y(s.N * OH * OW * s.OC);
    for (auto& v : x) v = dist(rng);
    for (auto& v : w) v = dist(rng);
    for (auto& v : b) v = dist(rng);
    const conv::Conv2d model = conv::Conv2d::pack(isa, p, w.data(), b.data());
    p.algo = conv::ConvAlgo::gemm;
    const conv::Conv2d base = conv::Conv2d::pack(isa, p, w.data(), b.data());
    int iters = iters_opt;
    const auto [t, tb] = time_alternately(
        [&] { model.run(&pool, s.N, s.H, s.W, x.data(), y.data(), nullptr, true); },
        [&] { base.run(&pool, s.N, s.H, s.W, x.data(), y.data(), nullptr, true); }, iters);
    const double flop = 2.0 * s.N * OH * OW * s.OC * s.C * s.k * s.k;
    const double gflops = flop / t.best * 1e-9;
    const char* algo = model.winograd_tile() == 4   ? "wino-f4"
                       : model.winograd_tile() == 2 ? "wino-f2"
                                                    : "gemm";
    char name[96];
    std::snprintf(name, sizeof name, "%lldx%lldx%lldx%lldx%lldx%lldx%lld", (long long)s.N,
                  (long long)s.H, (long long)s.W, (long long)s.C, (long long)s.OC, (long long)s.k,
                  (long long)s.s);
    if (json) {
      nlohmann::json j;
      j["kernel"] = "conv";
      j["algo"] = model.winograd() ? "winograd" : "gemm";
      j["winograd_tile"] = model.winograd_tile();  // m of F(m,3), 0 on the GEMM path
      j["isa"] = isa_name(isa);
      j["threads"] = threads;
      j["N"] = s.N, j["H"] = s.H, j["W"] = s.W, j["C"] = s.C, j["OC"] = s.OC;
      j["k"] = s.k, j["stride"] = s.s;
      j["best_ms"] = t.best * 1e3;
      j["median_ms"] = t.median * 1e3;
      j["gflops"] = gflops;
      j["peak_gflops"] = peak;
      j["fraction_of_peak"] = gflops / peak;
      j["gemm_path_ms"] = tb.best * 1e3;
      j["speedup_vs_gemm_path"] = tb.best / t.best;
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%-26s %-9s %9.3f %9.1f %6.1f%% %11.3f %7.2fx\n", name, algo, t.best * 1e3,
                  gflops, 100 * gflops / peak, tb.best * 1e3, tb.best / t.best);
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int bench_kernel(const std::vector<std::string>& args) {
  std::string kernel;
  std::vector<Shape> shapes;
  std::vector<ConvShape> convs;
  std::vector<AttnShape> attns;
  int threads = 1, iters_opt = 0;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail(a, " needs a value");
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--kernel") {
      kernel = value();
    } else if (kernel.empty() && !a.empty() && a[0] != '-') {
      kernel = a;
    } else if (a == "--shape") {
      shapes.push_back(parse_shape(value()));
    } else if (a == "--conv") {
      convs.push_back(parse_conv(value()));
    } else if (a == "--attn") {
      attns.push_back(parse_attn(value()));
    } else if (a == "--threads") {
      threads = parse_int(a, value(), 1, 1024);
    } else if (a == "--iters") {
      iters_opt = parse_int(a, value(), 1, 1000000);
    } else if (a == "--json") {
      json = true;
    } else {
      fail("unknown option '", a, "' (see tern_kernel_bench --help)");
    }
  }
  if (kernel != "gemm" && kernel != "gemm_unpacked" && kernel != "conv" && kernel != "attention")
    fail("kernel '", kernel, "': known kernels are gemm, gemm_unpacked, conv, attention");
  if (kernel == "conv") return bench_conv(convs, threads, iters_opt, json);
  if (kernel == "attention") return bench_attention(attns, threads, iters_opt, json);
  if (shapes.empty())
    shapes = {{256, 256, 256},  {512, 512, 512},  {1024, 1024, 1024}, {2048, 2048, 2048},
              {128, 3072, 768}, {128, 768, 3072}, {128, 768, 768},    {197, 2304, 768},
              {197, 3072, 768}, {3136, 256, 64},  {3136, 64, 576},    {784, 128, 1152},
              {49, 2048, 512}};

  const Isa isa = active_isa();
  ThreadPool pool(threads);
  const double peak = peak::measure_fma_peak_gflops(isa, threads);
  const bool have_eigen = isa_supported(Isa::avx2);
  if (!json)
    std::printf(
        "kernel %s, isa %s, threads %d, FMA peak %.1f GFLOP/s; Eigen: 1 thread, avx2\n"
        "GFLOP/s of the fastest run (median in brackets); Tern and Eigen alternate\n"
        "%-18s %9s %9s %7s %9s %9s %8s\n",
        kernel.c_str(), isa_name(isa), threads, peak, "M x N x K", "best ms", "GFLOP/s", "peak",
        "(median)", "Eigen", "vs Eigen");
  for (const Shape& s : shapes) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> A(s.M * s.K), B(s.K * s.N), C(s.M * s.N);
    for (auto& x : A) x = dist(rng);
    for (auto& x : B) x = dist(rng);
    int iters = iters_opt;
    const gemm::PackedB pb = kernel == "gemm"
                                 ? gemm::PackedB::pack(isa, B.data(), s.K, s.N, s.N, false)
                                 : gemm::PackedB();
    const std::function<void()> run_tern = [&] {
      if (kernel == "gemm")
        gemm::gemm(&pool, s.M, A.data(), s.K, pb, C.data(), s.N);
      else
        gemm::gemm_unpacked(isa, &pool, s.M, s.N, s.K, A.data(), s.K, B.data(), s.N, false,
                            C.data(), s.N);
    };
    const auto [t, te] = time_alternately(
        run_tern, have_eigen ? eigen_gemm_runner(s.M, s.N, s.K) : std::function<void()>(), iters);
    const double flop = 2.0 * s.M * s.N * s.K;
    const double gflops = flop / t.best * 1e-9, median_gflops = flop / t.median * 1e-9;
    const double eigen = have_eigen ? flop / te.best * 1e-9 : 0;
    if (json) {
      nlohmann::json j;
      j["kernel"] = kernel;
      j["isa"] = isa_name(isa);
      j["threads"] = threads;
      j["M"] = s.M;
      j["N"] = s.N;
      j["K"] = s.K;
      j["iters"] = iters;
      j["best_ms"] = t.best * 1e3;
      j["median_ms"] = t.median * 1e3;
      j["gflops"] = gflops;
      j["median_gflops"] = median_gflops;
      j["peak_gflops"] = peak;
      j["fraction_of_peak"] = gflops / peak;
      j["eigen_gflops"] = have_eigen ? nlohmann::json(eigen) : nlohmann::json(nullptr);
      j["eigen_threads"] = 1;
      j["speedup_vs_eigen"] = have_eigen ? nlohmann::json(gflops / eigen) : nlohmann::json(nullptr);
      std::printf("%s\n", j.dump().c_str());
    } else {
      char name[64];
      std::snprintf(name, sizeof name, "%lldx%lldx%lld", (long long)s.M, (long long)s.N,
                    (long long)s.K);
      char median[32];
      std::snprintf(median, sizeof median, "(%.1f)", median_gflops);
      std::printf("%-18s %9.3f %9.1f %6.1f%% %9s %9.1f %7.2fx\n", name, t.best * 1e3, gflops,
                  100 * gflops / peak, median, eigen, have_eigen ? gflops / eigen : 0.0);
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace tern::bench

int main(int argc, char** argv) {
  try {
    return tern::bench::bench_kernel(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tern_kernel_bench: error: %s\n", e.what());
    return 1;
  }
}
