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

#include "engine/core/cpu.hpp"
#include "engine/core/error.hpp"
#include "engine/core/image.hpp"
#include "engine/core/weights.hpp"
#include "engine/frontend/text.hpp"
#include "tern/tern.hpp"

#if __has_include("kernels/peak/peak.hpp")
#include "kernels/peak/peak.hpp"
#define TERN_HAVE_PEAK 1
#endif

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
    "  --seq-len N      text models: tokens per text, [CLS] and [SEP] included (default 128)\n"
    "  --image-size N   image models: input height and width (default: the model's crop size;\n"
    "                   vit_b_16 takes only its own size)\n"
    "  --threads N      worker threads (default 0 = every core this process may use)\n"
    "  --warmup N       untimed runs first (default 2)\n"
    "  --iters N        timed runs (default 10)\n"
    "  --json           one JSON object instead of the table\n"
    "The ISA follows TERN_ISA (scalar|avx2|avx512) or the best the CPU has.\n";

struct BenchArgs {
  std::string model;
  int64_t batch = 1, seq_len = 0, image_size = 0, threads = 0, warmup = 2, iters = 10;
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

// ---- FLOPs from the config -------------------------------------------------------------------

int64_t config_int(const nlohmann::json& cfg, std::initializer_list<const char*> keys,
                   const std::string& arch) {
  for (const char* k : keys) {
    auto it = cfg.find(k);
    if (it == cfg.end()) continue;
    if (!it->is_number_integer() || it->get<int64_t>() < 1)
      fail(arch, " config: '", k, "' must be a positive integer");
    return it->get<int64_t>();
  }
  fail(arch, " config: missing '", *keys.begin(), "'");
}

int64_t conv_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

// torchvision ResNet v1.5 (stride on the 3x3 conv), bottleneck blocks.
double resnet_macs(const nlohmann::json& cfg, int64_t h, int64_t w) {
  std::vector<int64_t> layers = {3, 4, 6, 3};
  for (const char* k : {"layers", "blocks", "stage_blocks", "blocks_per_stage"}) {
    if (!cfg.contains(k)) continue;
    layers.clear();
    if (!cfg[k].is_array() || cfg[k].empty()) fail("resnet50 config: '", k, "' must be a list");
    for (const auto& v : cfg[k]) {
      if (!v.is_number_integer() || v.get<int64_t>() < 1)
        fail("resnet50 config: '", k, "' must hold positive integers");
      layers.push_back(v.get<int64_t>());
    }
    break;
  }
  const int64_t width = cfg.contains("width") || cfg.contains("base_width")
                            ? config_int(cfg, {"width", "base_width"}, "resnet50")
                            : 64;
  const int64_t expansion =
      cfg.contains("expansion") ? config_int(cfg, {"expansion"}, "resnet50") : 4;
  const int64_t stem = cfg.contains("stem_channels") || cfg.contains("inplanes")
                           ? config_int(cfg, {"stem_channels", "inplanes"}, "resnet50")
                           : 64;
  double macs = 0;
  h = conv_out(h, 7, 2, 3), w = conv_out(w, 7, 2, 3);
  macs += double(h) * w * stem * 3 * 49;               // stem 7x7/2
  h = conv_out(h, 3, 2, 1), w = conv_out(w, 3, 2, 1);  // max pool 3x3/2
  int64_t in = stem;
  for (size_t s = 0; s < layers.size(); ++s) {
    const int64_t planes = width << s, out = planes * expansion;
    for (int64_t b = 0; b < layers[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const int64_t h2 = conv_out(h, 3, stride, 1), w2 = conv_out(w, 3, stride, 1);
      macs += double(h) * w * in * planes;             // 1x1 reduce
      macs += double(h2) * w2 * planes * planes * 9;   // 3x3 (stride)
      macs += double(h2) * w2 * planes * out;          // 1x1 expand
      if (b == 0) macs += double(h2) * w2 * in * out;  // downsample 1x1 (stride)
      h = h2, w = w2, in = out;
    }
  }
  return macs;
}

// One encoder block over `tokens` tokens: q, k, v, out projections, the FFN, and the two
// attention matmuls (scores and weighted values, summed over heads: T*T*D each).
double encoder_block_macs(double tokens, double dim, double ffn) {
  return tokens * (4 * dim * dim + 2 * dim * ffn) + 2 * tokens * tokens * dim;
}

}  // namespace

double forward_flops(const std::string& arch, const std::string& config_json, int64_t batch,
                     int64_t seq_len, int64_t image_h, int64_t image_w) {
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(config_json);
  } catch (const nlohmann::json::exception&) {
    fail(arch, " config: not valid JSON");
  }
  if (!cfg.is_object()) fail(arch, " config: not a JSON object");
  double macs = 0;
  if (arch == "resnet50") {
    macs = resnet_macs(cfg, image_h, image_w);
  } else if (arch == "vit_b_16") {
    const int64_t patch = config_int(cfg, {"patch_size"}, arch);
    const int64_t dim = config_int(cfg, {"hidden_dim", "hidden_size", "dim"}, arch);
    const int64_t ffn = config_int(cfg, {"mlp_dim", "intermediate_size"}, arch);
    const int64_t layers = config_int(cfg, {"num_layers", "n_layers", "num_hidden_layers"}, arch);
    const double patches = double(image_h / patch) * double(image_w / patch);
    macs = patches * dim * 3 * patch * patch  // patch embedding: a 16x16/16 conv
           + layers * encoder_block_macs(patches + 1, dim, ffn);
  } else if (arch == "distilbert") {
    const int64_t dim = config_int(cfg, {"dim", "hidden_size"}, arch);
    const int64_t ffn = config_int(cfg, {"hidden_dim", "intermediate_size"}, arch);
    const int64_t layers = config_int(cfg, {"n_layers", "num_layers", "num_hidden_layers"}, arch);
    macs = layers * encoder_block_macs(double(seq_len), dim, ffn);
  } else {
    fail("no FLOP count for architecture '", arch, "'");
  }
  return 2.0 * macs * double(batch);
}

namespace {

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
std::vector<std::vector<int32_t>> synthetic_ids(const Model& model, int64_t n, int64_t seq_len) {
  const std::vector<int32_t> empty = model.tokenize("");  // [CLS] [SEP]
  if (empty.size() != 2) fail("the tokenizer gives ", empty.size(), " ids for \"\"");
  const std::vector<int32_t> words = model.tokenize(
      "The quick brown fox jumps over the lazy dog, while a benchmark measures how long an "
      "embedding model takes to read a sentence of ordinary English words.");
  std::vector<int32_t> row = {empty[0]};
  for (int64_t i = 0; i + 2 < seq_len; ++i) row.push_back(words[1 + i % (words.size() - 2)]);
  row.push_back(empty[1]);
  return std::vector<std::vector<int32_t>>(static_cast<size_t>(n), row);
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

  // The config and crop size come from the file itself (the API does not expose them).
  auto file = WeightFile::open(b.model);
  const std::string arch = file->architecture();
  const std::string config = file->metadata("config");
  const int64_t crop = file->has_metadata("preprocess")
                           ? PreprocessConfig::from_json(file->metadata("preprocess")).crop
                           : PreprocessConfig::from_profile("torchvision-v1").crop;
  file.reset();

  Options options;
  options.threads = static_cast<int>(b.threads);
  const auto t_load = std::chrono::steady_clock::now();
  auto model = Model::load(b.model, options);
  const double load_ms = ms_since(t_load);

  int64_t seq_len = 0, image = 0;
  std::vector<float> pixels;
  std::vector<std::vector<int32_t>> ids;
  if (model->is_text_model()) {
    if (b.image_size) fail("--image-size applies to image models; ", b.model, " is ", arch);
    seq_len = b.seq_len ? b.seq_len : 128;
    ids = synthetic_ids(*model, b.batch, seq_len);
  } else {
    if (b.seq_len) fail("--seq-len applies to text models; ", b.model, " is ", arch);
    image = b.image_size ? b.image_size : crop;
    pixels = synthetic_images(b.batch, image, image);
  }
  const double flops = forward_flops(arch, config, b.batch, seq_len, image, image);

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
  const Isa isa = parse_isa(model->isa());
#ifdef TERN_HAVE_PEAK
  const double peak = measure_fma_peak_gflops(isa, model->threads());
#else
  (void)isa;
  const double peak = 0;  // the FMA-peak measurement (kernels/peak/) has not landed yet
#endif
  const double rss = peak_rss_mb();
  const double items_per_s = double(b.batch) * 1000.0 / median_ms;

  if (b.json) {
    nlohmann::ordered_json j;
    j["model"] = b.model;
    j["architecture"] = arch;
    j["isa"] = model->isa();
    j["batch"] = b.batch;
    j["threads"] = model->threads();
    if (model->is_text_model())
      j["seq_len"] = seq_len;
    else
      j["image_size"] = image;
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
