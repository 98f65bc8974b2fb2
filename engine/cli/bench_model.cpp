// `tern bench MODEL.tern`: the model benchmark. See bench_model.hpp for the contract.
#include "engine/cli/bench_model.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "tern/error.hpp"
#include "engine/frontend/text.hpp"
#include "tern/tern.hpp"

namespace tern::cli {
namespace {

const char kHelp[] =
    "usage: tern bench MODEL.tern [--batch N] [--seq-len N] [--image-size N] [--threads N]\n"
    "                             [--warmup N] [--iters N] [--json]\n"
    "\n"
    "Times the forward pass of MODEL on a synthetic input (through the public API, as `tern "
    "embed`\n"
    "runs it) and reports load time, latency (min, median, p90), throughput, GFLOP/s, the "
    "fraction\n"
    "of this machine's FMA peak (measured in the same run, same ISA and threads) and peak RSS.\n"
    "\n"
    "  --batch N        inputs per forward pass (default 1)\n"
    "  --seq-len N      text models: tokens per text, start and end tokens included (default 128)\n"
    "  --min-seq-len N  text models: a mixed batch, lengths drawn from [N, --seq-len] (seed 42)\n"
    "  --image-size N   image models: input height and width (default: the model's crop size;\n"
    "                   transformers take only their own size)\n"
    "  --threads N      worker threads (default 0 = every core this process may use)\n"
    "  --warmup N       untimed runs first (default 2)\n"
    "  --iters N        timed runs (default 10)\n"
    "  --json           one JSON object instead of the table\n"
    "The ISA follows TERN_ISA (scalar|avx2|avx512) or the best the CPU has.\n";

struct BenchArgs {
  std::string model;
  int64_t batch = 1, seq_len = 0, image_size = 0, threads = 0, warmup = 2, iters = 10;
  int64_t min_len = 0;  // --min-seq-len: lengths drawn from [min_len, seq_len] (mixed batches)
  bool json = false;
};

int64_t parse_count(const std::string& option, const std::string& value, int64_t lo, int64_t hi) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size()) fail(option, " expects an integer, got '", value, "'");
  if (v < lo || v > hi) fail(option, " must be in [", lo, ", ", hi, "], got ", v);
  return v;
}

BenchArgs parse_args(const Args& args) {
  BenchArgs b;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) fail(a, " needs a value");
      return args[++i];
    };
    if (a == "--batch")
      b.batch = parse_count(a, value(), 1, 4096);
    else if (a == "--seq-len")
      b.seq_len = parse_count(a, value(), 2, 1 << 20);
    else if (a == "--min-seq-len")
      b.min_len = parse_count(a, value(), 2, 1 << 20);
    else if (a == "--image-size")
      b.image_size = parse_count(a, value(), 1, 8192);
    else if (a == "--threads")
      b.threads = parse_count(a, value(), 0, 4096);
    else if (a == "--warmup")
      b.warmup = parse_count(a, value(), 0, 1000000);
    else if (a == "--iters")
      b.iters = parse_count(a, value(), 1, 1000000);
    else if (a == "--json")
      b.json = true;
    else if (!a.empty() && a[0] == '-')
      fail("unknown option ", a, " (see tern bench --help)");
    else if (b.model.empty())
      b.model = a;
    else
      fail("more than one model given ('", b.model, "' and '", a, "')");
  }
  if (b.model.empty()) fail("no model given (usage: tern bench MODEL.tern [options])");
  return b;
}

// ---- the synthetic input ---------------------------------------------------------------------

// Normalised-image-like values: roughly N(0, 1), fixed seed, so every run times the same input.
std::vector<float> synthetic_images(int64_t n, int64_t h, int64_t w) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n * 3 * h * w));
  for (float& v : x) v = dist(rng);
  return x;
}

// [CLS] + real word-piece ids cycled from an English text + [SEP], seq_len ids per row.
// With min_len > 0, row i has a length drawn uniformly from [min_len, seq_len] (fixed seed).
std::vector<std::vector<int32_t>> synthetic_ids(const Model& model, int64_t n, int64_t seq_len,
                                                int64_t min_len) {
  const std::vector<int32_t> empty = model.tokenize("");  // [CLS] [SEP]
  if (empty.size() != 2) fail("the tokenizer gives ", empty.size(), " ids for \"\"");
  const std::vector<int32_t> words = model.tokenize(
      "The quick brown fox jumps over the lazy dog, while a benchmark measures how long an "
      "embedding model takes to read a sentence of ordinary English words.");
  std::vector<int32_t> row = {empty[0]};
  for (int64_t i = 0; i + 2 < seq_len; ++i) row.push_back(words[1 + i % (words.size() - 2)]);
  row.push_back(empty[1]);
  std::vector<std::vector<int32_t>> rows(static_cast<size_t>(n), row);
  if (min_len > 0) {
    std::mt19937 rng(42);
    std::uniform_int_distribution<int64_t> len(min_len, seq_len);
    for (auto& r : rows) {
      const int64_t l = len(rng);
      r.resize(l);
      r.back() = empty[1];
    }
  }
  return rows;
}

double percentile(std::vector<double> sorted, double q) {
  std::sort(sorted.begin(), sorted.end());
  // Linear interpolation between closest ranks (numpy's default).
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - double(lo));
}

double peak_rss_mb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int bench_model(const Args& args) {
  for (const auto& a : args)
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    }
  const BenchArgs b = parse_args(args);

  Options options;
  options.threads = static_cast<int>(b.threads);
  const auto t_load = std::chrono::steady_clock::now();
  auto model = Model::load(b.model, options);
  const double load_ms = ms_since(t_load);
  const std::string arch = model->architecture();
  const int64_t crop = model->image_size();

  int64_t seq_len = 0, image = 0;
  std::vector<float> pixels;
  std::vector<std::vector<int32_t>> ids;
  if (model->is_text_model()) {
    if (b.image_size) fail("--image-size applies to image models; ", b.model, " is ", arch);
    seq_len = b.seq_len ? b.seq_len : 128;
    if (b.min_len > seq_len) fail("--min-seq-len ", b.min_len, " is above --seq-len ", seq_len);
    ids = synthetic_ids(*model, b.batch, seq_len, b.min_len);
  } else {
    if (b.seq_len) fail("--seq-len applies to text models; ", b.model, " is ", arch);
    image = b.image_size ? b.image_size : crop;
    pixels = synthetic_images(b.batch, image, image);
  }
  double flops = 0;  // of the real tokens: a mixed batch costs each text its own length
  if (model->is_text_model())
    for (const auto& r : ids) flops += model->forward_flops(1, int64_t(r.size()), 0, 0);
  else
    flops = model->forward_flops(b.batch, 0, image, image);

  EmbedOptions opts;
  opts.batch = static_cast<int>(b.batch);
  auto run_once = [&] {
    if (model->is_text_model()) return model->embed_token_ids(ids, opts).size();
    return model->embed_preprocessed(pixels.data(), b.batch, image, image, opts).size();
  };
  for (int64_t i = 0; i < b.warmup; ++i) run_once();
  std::vector<double> times;
  times.reserve(b.iters);
  for (int64_t i = 0; i < b.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t got = run_once();
    times.push_back(ms_since(t0));
    if (got != static_cast<size_t>(b.batch)) fail("expected ", b.batch, " outputs, got ", got);
  }
  const double min_ms = *std::min_element(times.begin(), times.end());
  const double median_ms = percentile(times, 0.5), p90_ms = percentile(times, 0.9);
  double mean_ms = 0;
  for (double t : times) mean_ms += t / double(times.size());
  const double gflops = flops / (median_ms * 1e6);

  // The peak of the instructions this model runs, on as many threads as it uses: measured after
  // the timing so that it does not heat the timed runs.
  const double peak = fma_peak_gflops(model->threads(), model->isa());
  const double rss = peak_rss_mb();
  const double items_per_s = double(b.batch) * 1000.0 / median_ms;

  if (b.json) {
    nlohmann::ordered_json j;
    j["model"] = b.model;
    j["architecture"] = arch;
    j["isa"] = model->isa();
    j["batch"] = b.batch;
    j["threads"] = model->threads();
    if (model->is_text_model()) {
      j["seq_len"] = seq_len;
      std::vector<int64_t> lengths;
      for (const auto& r : ids) lengths.push_back(int64_t(r.size()));
      j["seq_lens"] = lengths;
    } else {
      j["image_size"] = image;
    }
    j["warmup"] = b.warmup;
    j["iters"] = b.iters;
    j["load_ms"] = load_ms;
    j["min_ms"] = min_ms;
    j["median_ms"] = median_ms;
    j["p90_ms"] = p90_ms;
    j["mean_ms"] = mean_ms;
    j["times_ms"] = times;
    j["items_per_s"] = items_per_s;
    j["gflop_per_forward"] = flops / 1e9;
    j["gflops"] = gflops;
    j["peak_gflops"] = peak > 0 ? nlohmann::json(peak) : nlohmann::json(nullptr);
    j["fraction_of_peak"] = peak > 0 ? nlohmann::json(gflops / peak) : nlohmann::json(nullptr);
    j["peak_rss_mb"] = rss;
    // Valid UTF-8 JSON whatever the model's path: bytes that are not UTF-8 become U+FFFD.
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  const std::string shape = model->is_text_model()
                                ? std::to_string(seq_len) + " tokens"
                                : std::to_string(image) + "x" + std::to_string(image);
  std::printf("model       %s (%s), batch %lld, %s\n", frontend::printable(b.model).c_str(),
              arch.c_str(),
              static_cast<long long>(b.batch), shape.c_str());
  std::printf("isa         %s, %d threads\n", model->isa().c_str(), model->threads());
  std::printf("load        %.1f ms\n", load_ms);
  std::printf(
      "latency     min %.2f ms, median %.2f ms, p90 %.2f ms  (%lld runs after %lld warm-up)\n",
      min_ms, median_ms, p90_ms, static_cast<long long>(b.iters), static_cast<long long>(b.warmup));
  std::printf("throughput  %.2f %s/s\n", items_per_s, model->is_text_model() ? "texts" : "images");
  std::printf("compute     %.3f GFLOP per forward, %.1f GFLOP/s", flops / 1e9, gflops);
  if (peak > 0)
    std::printf(" = %.1f%% of the %.1f GFLOP/s FMA peak (%s, %d threads)\n", 100.0 * gflops / peak,
                peak, model->isa().c_str(), model->threads());
  else
    std::printf(" (FMA peak not measured in this build)\n");
  std::printf("memory      %.1f MB peak resident\n", rss);
  return 0;
}

}  // namespace tern::cli
