// ROBUSTNESS.md, "Numerics and runtime" (N1-N9), through the public C++ and C APIs.
//
// Model-level cases run on small random-weight models that the exporter writes once into a cache
// directory (keyed by the exporter's sources, so a changed exporter re-exports). An architecture
// whose exporter or model has not landed yet is reported with a warning and skipped; any other
// export or load failure fails the test.
#include <xmmintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/tensor.hpp"
#include "engine/core/thread_pool.hpp"
#include "kernels/gemm/gemm.hpp"
#include "tern/tern.hpp"
#include "tern/tern_c.h"
#include "test_util.hpp"

#ifdef __FAST_MATH__
#error "Tern must not be built with -ffast-math: the non-finite checks (std::isnan) would vanish"
#endif

// Under AddressSanitizer (scripts/sanitize.sh) an absurd allocation must come back as a null
// pointer, turned into tern::Error / std::bad_alloc as in a normal build, not abort the process.
extern "C" __attribute__((used, visibility("default"))) const char* __asan_default_options() {
  return "allocator_may_return_null=1";
}

using namespace tern;

namespace {

namespace fs = std::filesystem;

// MXCSR without the sticky exception flags (bits 0-5), which any arithmetic may set: the control
// bits (FTZ, DAZ, rounding, masks) are what a caller's mode consists of.
unsigned mxcsr_control() { return _mm_getcsr() & ~0x3Fu; }

uint64_t fnv1a(const std::string& bytes, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// The exporter's smallest configuration per architecture (the options its add_arguments offers).
std::string small_config_args(const std::string& arch) {
  if (arch == "resnet50") return "--layers 1,1,1,1";
  if (arch == "distilbert") return "--layers 2 --dim 64 --heads 4 --hidden-dim 128";
  if (arch == "vit_b_16") return "--layers 1 --hidden-dim 64 --heads 4 --mlp-dim 128 --patch-size 32";
  return "";
}

// Path of a random-weight model of `arch` (seed 1), exported once per exporter version; nullopt
// (with a warning) while the architecture is not available yet.
std::optional<std::string> tiny_model(const std::string& arch) {
  const fs::path src = test::source_path("weights_tools");
  uint64_t key = fnv1a(arch + small_config_args(arch));
  for (const auto& entry : fs::recursive_directory_iterator(src))
    if (entry.is_regular_file() && entry.path().extension() == ".py")
      key = fnv1a(entry.path().string() + read_file(entry.path()), key);
  char name[64];
  std::snprintf(name, sizeof name, "%s-%016llx.tern", arch.c_str(),
                static_cast<unsigned long long>(key));
  const fs::path dir = fs::temp_directory_path() / "tern-test-models";
  fs::create_directories(dir);
  const fs::path out = dir / name;
  if (fs::exists(out)) return out.string();
  const fs::path log = dir / (std::string(name) + ".log");
  const std::string cmd = "/usr/bin/python3 '" + (src / "export.py").string() + "' " + arch +
                          " --random-init --seed 1 " + small_config_args(arch) + " -o '" +
                          out.string() + "' >'" + log.string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    const std::string why = read_file(log);
    if (why.find("not available yet") != std::string::npos) {
      WARN_MESSAGE(false, arch, ": exporter not available yet, model-level checks skipped");
      return std::nullopt;
    }
    FAIL("export of ", arch, " failed: ", cmd, "\n", why);
  }
  return out.string();
}

// Loads `arch`; nullopt (with a warning) when the model is still a placeholder.
std::unique_ptr<Model> load_tiny(const std::string& arch, const Options& options = {}) {
  const auto path = tiny_model(arch);
  if (!path) return nullptr;
  try {
    return Model::load(*path, options);
  } catch (const Error& e) {
    if (std::string(e.what()).find("not implemented yet") != std::string::npos) {
      WARN_MESSAGE(false, arch, ": model not implemented yet, model-level checks skipped");
      return nullptr;
    }
    throw;
  }
}

const char* const kArchs[] = {"resnet50", "vit_b_16", "distilbert"};

const std::vector<std::string> kTexts = {
    "Hello, world!", "a", "The quick brown fox jumps over the lazy dog, twice; then rests.",
    "naïve café 日本語 🙂"};

// One input set per model: images as preprocessed NCHW floats, or texts.
struct Inputs {
  int64_t n = 0, size = 0;
  std::vector<float> nchw;
};

Inputs image_inputs(const Model& m, int64_t n, uint64_t seed) {
  Inputs in;
  in.n = n;
  in.size = m.architecture() == "vit_b_16" ? 224 : 32;  // resnet50 takes any size
  in.nchw = test::random_floats(n * 3 * in.size * in.size, seed, -2.f, 2.f);
  return in;
}

std::vector<Embedding> run(const Model& m, const Inputs& in, const EmbedOptions& opts = {}) {
  if (m.is_text_model()) return m.embed_texts(kTexts, opts);
  return m.embed_preprocessed(in.nchw.data(), in.n, in.size, in.size, opts);
}

bool bit_identical(const std::vector<Embedding>& a, const std::vector<Embedding>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].shape != b[i].shape ||
        std::memcmp(a[i].values.data(), b[i].values.data(), a[i].values.size() * 4) != 0)
      return false;
  return true;
}

double max_rel(const std::vector<Embedding>& a, const std::vector<Embedding>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].shape == b[i].shape);
    worst = std::max(worst, test::max_rel_diff(a[i].values.data(), b[i].values.data(),
                                               a[i].values.size(), 1e-6));
  }
  return worst;
}

}  // namespace

// ---- N7: the build keeps IEEE semantics ----------------------------------------------------------

TEST_CASE("N7: NaN is visible: std::isnan works and GEMM propagates NaN and Inf on every ISA") {
  volatile float zero = 0.f;
  const float nan = zero / zero;
  CHECK(std::isnan(nan));
  CHECK(!std::isfinite(1.f / zero));
  const int64_t M = 5, N = 19, K = 33;
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    auto a = test::random_floats(M * K, 11);
    const auto b = test::random_floats(K * N, 12);
    a[1 * K + 7] = std::numeric_limits<float>::quiet_NaN();  // row 1 must become all NaN
    a[3 * K + 0] = std::numeric_limits<float>::infinity();   // row 3: Inf or NaN everywhere
    const auto packed = gemm::PackedB::pack(isa, b.data(), K, N, N, false);
    std::vector<float> c(M * N);
    gemm::gemm(nullptr, M, a.data(), K, packed, c.data(), N);
    for (int64_t j = 0; j < N; ++j) {
      CAPTURE(j);
      CHECK(std::isnan(c[1 * N + j]));
      CHECK(!std::isfinite(c[3 * N + j]));
      CHECK(std::isfinite(c[0 * N + j]));
      CHECK(std::isfinite(c[4 * N + j]));
    }
  }
}

// ---- N4: denormals flushed in workers, the caller's MXCSR untouched ------------------------------

TEST_CASE("N4: a parallel GEMM on denormal data leaves the caller's MXCSR as it was") {
  ThreadPool pool(3);
  const int64_t M = 64, N = 48, K = 40;
  std::vector<float> a(M * K, 1e-39f), b(K * N, 1e-39f), c(M * N, -1.f);
  for (Isa isa : test::supported_isas()) {
    CAPTURE(isa_name(isa));
    const auto packed = gemm::PackedB::pack(isa, b.data(), K, N, N, false);
    const unsigned original = _mm_getcsr();
    for (unsigned mode : {original & ~0x8040u, original | 0x8040u}) {
      _mm_setcsr(mode);
      gemm::gemm(&pool, M, a.data(), K, packed, c.data(), N);
      CHECK(mxcsr_control() == (mode & ~0x3Fu));
      _mm_setcsr(original);
      for (float v : c) REQUIRE(v == 0.f);  // 1e-78 is below every float: zero with or without FTZ
    }
  }
}

// ---- N8: absurd sizes are an Error, not a crash --------------------------------------------------

TEST_CASE("N8: an allocation that cannot succeed is a tern::Error naming the size") {
  // 2^45 bytes: no overflow, just more memory than any machine here has.
  try {
    Tensor t({int64_t{1} << 43});
    FAIL("a 32 TiB tensor was allocated");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("bytes") != std::string::npos);
  }
  CHECK_THROWS_AS(aligned_alloc_bytes(std::numeric_limits<size_t>::max() - 8), Error);
  CHECK_THROWS_AS(Tensor({int64_t{1} << 31, int64_t{1} << 31, 4}), Error);
}

// ---- N9: C API misuse -----------------------------------------------------------------------------

TEST_CASE("N9: C API: null pointers, empty buffers and bad options give status codes") {
  tern_model* model = reinterpret_cast<tern_model*>(0x1);
  CHECK(tern_model_load(nullptr, 0, nullptr, &model) == TERN_INVALID_ARGUMENT);
  CHECK(std::string(tern_last_error()).find("NULL") != std::string::npos);
  CHECK(tern_model_load("x.tern", 0, nullptr, nullptr) == TERN_INVALID_ARGUMENT);

  const std::string missing = "/nonexistent/dir/missing.tern";
  CHECK(tern_model_load(missing.c_str(), 0, nullptr, &model) == TERN_ERROR);
  CHECK(model == nullptr);
  CHECK(std::string(tern_last_error()).find(missing) != std::string::npos);
  // The message is per thread: another thread starts clean and keeps its own.
  std::string other;
  std::thread([&] { other = tern_last_error(); }).join();
  CHECK(other.empty());
  CHECK(std::string(tern_last_error()).find(missing) != std::string::npos);

  CHECK(tern_model_load(missing.c_str(), 0, "not-an-isa", &model) == TERN_ERROR);
  CHECK(tern_model_load(missing.c_str(), -1, nullptr, &model) == TERN_ERROR);
  CHECK(std::string(tern_last_error()).find("threads") != std::string::npos);

  tern_embedding* e = reinterpret_cast<tern_embedding*>(0x1);
  const tern_embed_options opts = tern_embed_options_default();
  const uint8_t byte = 0;
  CHECK(tern_embed_image_file(nullptr, "a.png", &opts, &e) == TERN_INVALID_ARGUMENT);
  CHECK(tern_embed_image_bytes(nullptr, &byte, 1, &opts, &e) == TERN_INVALID_ARGUMENT);
  CHECK(tern_embed_image_rgb(nullptr, &byte, 1, 1, &opts, &e) == TERN_INVALID_ARGUMENT);
  CHECK(tern_embed_text(nullptr, "hi", &opts, &e) == TERN_INVALID_ARGUMENT);
  size_t count = 0;
  CHECK(tern_tokenize(nullptr, "hi", nullptr, 0, &count) == TERN_INVALID_ARGUMENT);
  CHECK(std::string(tern_last_error()).size() > 0);
  // Freeing nothing is allowed, as free(NULL) is.
  tern_model_free(nullptr);
  tern_embedding_free(nullptr);
  CHECK(tern_model_dim(nullptr) == 0);
  CHECK(std::string(tern_model_architecture(nullptr)).empty());
}

TEST_CASE("N9: C API on a loaded model: zero-length, wrong-sized and mismatched requests") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    const auto path = tiny_model(arch);
    if (!path || !load_tiny(arch)) continue;
    tern_model* model = nullptr;
    REQUIRE(tern_model_load(path->c_str(), 1, nullptr, &model) == TERN_OK);
    REQUIRE(model != nullptr);
    CHECK(std::string(tern_model_architecture(model)) == arch);
    CHECK(tern_model_dim(model) > 0);
    tern_embed_options opts = tern_embed_options_default();
    tern_embedding* e = nullptr;
    const uint8_t byte = 0x89;
    CHECK(tern_embed_image_bytes(model, &byte, 0, &opts, &e) == TERN_INVALID_ARGUMENT);
    CHECK(tern_embed_image_bytes(model, nullptr, 10, &opts, &e) == TERN_INVALID_ARGUMENT);
    CHECK(tern_embed_image_rgb(model, &byte, 0, 5, &opts, &e) == TERN_INVALID_ARGUMENT);
    CHECK(tern_embed_image_rgb(model, &byte, -3, 5, &opts, &e) == TERN_INVALID_ARGUMENT);
    // Claims 2^40 pixels behind a 1-byte buffer: rejected before a single pixel is read.
    CHECK(tern_embed_image_rgb(model, &byte, 1 << 20, 1 << 20, &opts, &e) != TERN_OK);
    CHECK(e == nullptr);
    const int bad_pooling = 42;  // what a C caller can pass; a C++ cast to the enum would be UB
    std::memcpy(&opts.pooling, &bad_pooling, sizeof bad_pooling);
    CHECK(tern_embed_text(model, "hi", &opts, &e) != TERN_OK);
    CHECK(std::string(tern_last_error()).find("42") != std::string::npos);
    opts = tern_embed_options_default();
    const bool text = std::string(arch) == "distilbert";
    if (text) {
      CHECK(tern_embed_image_bytes(model, &byte, 1, &opts, &e) == TERN_ERROR);
      CHECK(std::string(tern_last_error()).size() > 0);
      int32_t ids[2] = {-1, -1};
      size_t count = 0;
      CHECK(tern_tokenize(model, "Hello, world!", ids, 2, &count) == TERN_INVALID_ARGUMENT);
      CHECK(count > 2);  // the full count is reported so the caller can retry
      CHECK(tern_tokenize(model, "Hello, world!", nullptr, 5, &count) == TERN_INVALID_ARGUMENT);
      std::vector<int32_t> all(count);
      CHECK(tern_tokenize(model, "Hello, world!", all.data(), all.size(), &count) == TERN_OK);
      opts.max_length = 1 << 30;
      CHECK(tern_embed_text(model, "hi", &opts, &e) == TERN_ERROR);
      opts = tern_embed_options_default();
      REQUIRE(tern_embed_text(model, "hi", &opts, &e) == TERN_OK);
      CHECK(e->rank == 2);
      CHECK(e->shape[1] == tern_model_dim(model));
      tern_embedding_free(e);
      e = nullptr;
    } else {
      CHECK(tern_embed_text(model, "hi", &opts, &e) == TERN_ERROR);
      size_t count = 0;
      CHECK(tern_tokenize(model, "hi", nullptr, 0, &count) == TERN_ERROR);
      const std::vector<uint8_t> gray(7 * 5 * 3, 128);
      REQUIRE(tern_embed_image_rgb(model, gray.data(), 7, 5, &opts, &e) == TERN_OK);
      CHECK(e->rank == 1);
      CHECK(e->shape[0] == tern_model_dim(model));
      tern_embedding_free(e);
      e = nullptr;
    }
    tern_model_free(model);
  }
}

// ---- N1: thread counts ----------------------------------------------------------------------------

TEST_CASE("N1: threads 1, 2, 3, 7, more than cores and 0 give the same output, negative is an error") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    const auto path = tiny_model(arch);
    if (!path) continue;
    Options neg;
    neg.threads = -1;
    CHECK_THROWS_WITH_AS(Model::load(*path, neg), doctest::Contains("threads"), Error);
    auto one = load_tiny(arch, Options{1, ""});
    if (!one) continue;
    const Inputs in = image_inputs(*one, 2, 21);
    const auto ref = run(*one, in);
    for (int threads : {2, 3, 7, 2 * available_cores() + 1, 0}) {
      CAPTURE(threads);
      auto m = Model::load(*path, Options{threads, ""});
      CHECK(m->threads() == (threads == 0 ? available_cores() : threads));
      const auto got = run(*m, in);
      CHECK(max_rel(got, ref) <= 1e-5);
      CHECK(bit_identical(got, ref));  // the kernels' contract: task boundaries fix the sums
    }
  }
}

// ---- N2: batching and padding -----------------------------------------------------------------------

TEST_CASE("N2: a batch of k equals k single runs within 1e-5 (texts of different lengths pad)") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    auto m = load_tiny(arch, Options{2, ""});
    if (!m) continue;
    const Inputs in = image_inputs(*m, 3, 22);
    EmbedOptions batched, single;
    batched.batch = 4;
    single.batch = 1;
    for (Pooling p : {Pooling::model_default, Pooling::mean}) {
      batched.pooling = single.pooling = p;
      const auto a = run(*m, in, batched), b = run(*m, in, single);
      CHECK(max_rel(a, b) <= 1e-5);
    }
    EmbedOptions zero;
    zero.batch = 0;
    CHECK_THROWS_AS(run(*m, in, zero), Error);
  }
}

// ---- N3: determinism ---------------------------------------------------------------------------------

TEST_CASE("N3: the same input twice, and on a second model instance, is bit-identical") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    auto m = load_tiny(arch, Options{2, ""});
    if (!m) continue;
    const Inputs in = image_inputs(*m, 2, 23);
    const auto first = run(*m, in), second = run(*m, in);
    CHECK(bit_identical(first, second));
    auto again = load_tiny(arch, Options{2, ""});
    CHECK(bit_identical(run(*again, in), first));
  }
}

TEST_CASE("N3: concurrent callers on one model get the serial results") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    auto m = load_tiny(arch, Options{2, ""});
    if (!m) continue;
    const Inputs in = image_inputs(*m, 1, 24);
    const auto ref = run(*m, in);
    std::atomic<int> mismatches{0}, errors{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 3; ++c)
      callers.emplace_back([&] {
        try {
          for (int rep = 0; rep < 2; ++rep)
            if (!bit_identical(run(*m, in), ref)) ++mismatches;
        } catch (const std::exception&) {
          ++errors;
        }
      });
    for (auto& t : callers) t.join();
    CHECK(mismatches.load() == 0);
    CHECK(errors.load() == 0);
  }
}

// ---- N4 at the model level -----------------------------------------------------------------------

TEST_CASE("N4: denormal inputs give a finite embedding and the caller's MXCSR back") {
  for (const char* arch : {"resnet50", "vit_b_16"}) {
    CAPTURE(arch);
    auto m = load_tiny(arch, Options{2, ""});
    if (!m) continue;
    Inputs in = image_inputs(*m, 1, 25);
    for (float& v : in.nchw) v *= 1e-38f;  // every value denormal or near it
    const unsigned original = _mm_getcsr();
    for (unsigned mode : {original & ~0x8040u, original | 0x8040u}) {
      _mm_setcsr(mode);
      std::vector<Embedding> out;
      try {
        out = run(*m, in);
      } catch (...) {
        _mm_setcsr(original);
        throw;
      }
      const unsigned after = mxcsr_control();
      _mm_setcsr(original);
      CHECK(after == (mode & ~0x3Fu));
      for (float v : out.at(0).values) REQUIRE(std::isfinite(v));
    }
  }
}

// ---- N6: huge activations ------------------------------------------------------------------------

TEST_CASE("N6: huge or non-finite inputs give an Error or a finite result, never a silent NaN") {
  for (const char* arch : {"resnet50", "vit_b_16"}) {
    CAPTURE(arch);
    auto m = load_tiny(arch, Options{2, ""});
    if (!m) continue;
    for (float scale : {1e30f, 1e38f, std::numeric_limits<float>::infinity()}) {
      CAPTURE(scale);
      Inputs in = image_inputs(*m, 1, 26);
      for (float& v : in.nchw) v *= scale;
      try {
        const auto out = run(*m, in);
        for (float v : out.at(0).values) REQUIRE(std::isfinite(v));
      } catch (const Error& e) {
        CHECK(std::string(e.what()).find("not finite") != std::string::npos);
      }
    }
    // A NaN in the input must not come back as a number that looks like an embedding of it;
    // either it is reported or it was absorbed (ReLU) into a finite vector.
    Inputs in = image_inputs(*m, 1, 27);
    in.nchw[5] = std::numeric_limits<float>::quiet_NaN();
    try {
      for (float v : run(*m, in).at(0).values) REQUIRE(std::isfinite(v));
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("not finite") != std::string::npos);
    }
  }
}

// ---- Layers: EmbedOptions::layer and tern_embed_options.layer (issue 22) ------------------------

namespace {

// One C API embedding of a fixed input (a random RGB image or a text), copied out and freed.
struct CEmbedding {
  tern_status status = TERN_ERROR;
  std::string error;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

const char* const kLayerText = "Layers, from the first to the last.";
constexpr int kLayerImageW = 41, kLayerImageH = 37;

const std::vector<uint8_t>& layer_image() {
  static const std::vector<uint8_t> rgb = [] {
    std::vector<uint8_t> v(kLayerImageW * kLayerImageH * 3);
    std::mt19937 rng(22);
    for (auto& b : v) b = static_cast<uint8_t>(rng() & 0xFF);
    return v;
  }();
  return rgb;
}

CEmbedding c_embed(const tern_model* model, bool text, const tern_embed_options& opts) {
  tern_embedding* e = nullptr;
  CEmbedding r;
  r.status = text ? tern_embed_text(model, kLayerText, &opts, &e)
                  : tern_embed_image_rgb(model, layer_image().data(), kLayerImageW, kLayerImageH,
                                         &opts, &e);
  if (r.status != TERN_OK) {
    CHECK(e == nullptr);
    r.error = tern_last_error();
    return r;
  }
  REQUIRE(e != nullptr);
  r.shape.assign(e->shape, e->shape + e->rank);
  size_t n = 1;
  for (int64_t d : r.shape) n *= static_cast<size_t>(d);
  r.values.assign(e->values, e->values + n);
  tern_embedding_free(e);
  return r;
}

}  // namespace

TEST_CASE(
    "Layers: C API layer field: every layer runs, the last equals the default, bad ones fail") {
  for (const char* arch : kArchs) {
    CAPTURE(arch);
    const auto path = tiny_model(arch);
    const auto cpp = load_tiny(arch);
    if (!path || !cpp) continue;
    const std::string a = arch;
    const bool text = a == "distilbert";
    const std::vector<std::string> layers = cpp->layers();
    if (a == "resnet50") {
      CHECK(layers == std::vector<std::string>{"stem", "layer1", "layer2", "layer3", "layer4"});
    } else {
      // the tiny exports: distilbert 2 blocks, vit 1 block
      CHECK(layers == (a == "distilbert" ? std::vector<std::string>{"0", "1", "2"}
                                         : std::vector<std::string>{"0", "1"}));
    }
    tern_model* model = nullptr;
    REQUIRE(tern_model_load(path->c_str(), 1, nullptr, &model) == TERN_OK);
    tern_embed_options opts = tern_embed_options_default();
    CHECK(opts.layer == nullptr);
    const CEmbedding def = c_embed(model, text, opts);
    REQUIRE(def.status == TERN_OK);
    opts.layer = "";
    const CEmbedding empty = c_embed(model, text, opts);
    REQUIRE(empty.status == TERN_OK);
    CHECK(empty.values == def.values);  // "" is the usual output, bit for bit

    for (size_t i = 0; i < layers.size(); ++i) {
      CAPTURE(layers[i]);
      opts = tern_embed_options_default();
      opts.layer = layers[i].c_str();
      const CEmbedding got = c_embed(model, text, opts);
      REQUIRE(got.status == TERN_OK);
      // The C++ API gives the same, bit for bit.
      EmbedOptions cpp_opts;
      cpp_opts.layer = layers[i];
      const Embedding want =
          text ? cpp->embed_text(kLayerText, cpp_opts)
               : cpp->embed_image_rgb(layer_image().data(), kLayerImageW, kLayerImageH, cpp_opts);
      CHECK(got.shape == want.shape);
      CHECK(got.values == want.values);
      if (text) {
        CHECK(got.shape.size() == 2);  // distilbert's default pooling is none: [T, D]
        CHECK(got.shape.back() == cpp->dim());
      }
      if (a == "resnet50") {
        const int64_t channels[] = {64, 256, 512, 1024, 2048};
        CHECK(got.shape == std::vector<int64_t>{channels[i]});
        // --pooling none: the feature map [C, H, W], whose mean over H, W is the pooled vector.
        opts.pooling = TERN_POOLING_NONE;
        const CEmbedding map = c_embed(model, text, opts);
        REQUIRE(map.status == TERN_OK);
        REQUIRE(map.shape.size() == 3);
        CHECK(map.shape[0] == channels[i]);
        const int64_t hw = map.shape[1] * map.shape[2];
        std::vector<float> mean(static_cast<size_t>(channels[i]));
        for (int64_t c = 0; c < channels[i]; ++c) {
          double s = 0;
          for (int64_t p = 0; p < hw; ++p) s += map.values[c * hw + p];
          mean[c] = static_cast<float>(s / double(hw));
        }
        CHECK(test::max_rel_diff(mean.data(), got.values.data(), mean.size()) <= 1e-5);
        // --normalize on a feature map: the whole map is one unit vector.
        opts.normalize = 1;
        const CEmbedding unit = c_embed(model, text, opts);
        REQUIRE(unit.status == TERN_OK);
        REQUIRE(unit.shape == map.shape);
        double ss = 0;
        for (float v : map.values) ss += double(v) * v;
        std::vector<float> want(map.values.size());
        for (size_t k = 0; k < want.size(); ++k)
          want[k] = static_cast<float>(map.values[k] / std::sqrt(ss));
        CHECK(test::max_rel_diff(unit.values.data(), want.data(), want.size()) <= 1e-6);
      }
      if (text) {
        // --normalize on tokens: every token row is a unit vector.
        opts.normalize = 1;
        const CEmbedding unit = c_embed(model, text, opts);
        REQUIRE(unit.status == TERN_OK);
        REQUIRE(unit.shape == got.shape);
        for (int64_t t = 0; t < unit.shape[0]; ++t) {
          double ss = 0;
          for (int64_t c = 0; c < unit.shape[1]; ++c) {
            const double v = unit.values[t * unit.shape[1] + c];
            ss += v * v;
          }
          CHECK(std::fabs(ss - 1.0) <= 1e-5);
        }
      }
      if (a == "vit_b_16") CHECK(got.shape == std::vector<int64_t>{cpp->dim()});  // cls pooling
      if (i + 1 < layers.size()) CHECK(got.values != def.values);
    }
    // The last layer: the default itself for ResNet50 and DistilBERT; for ViT the default adds the
    // final LayerNorm.
    opts = tern_embed_options_default();
    opts.layer = "-1";
    const CEmbedding last = c_embed(model, text, opts);
    if (a == "resnet50") {
      CHECK(last.status == TERN_ERROR);  // named stages only
    } else {
      REQUIRE(last.status == TERN_OK);
      CHECK((last.values == def.values) == (a == "distilbert"));
    }
    opts.layer = layers.back().c_str();
    const CEmbedding by_name = c_embed(model, text, opts);
    REQUIRE(by_name.status == TERN_OK);
    CHECK((by_name.values == def.values) == (a != "vit_b_16"));

    for (const char* bad : {"nope", "layer9", "99", "-99", " 0", "1 "}) {
      CAPTURE(bad);
      opts.layer = bad;
      const CEmbedding r = c_embed(model, text, opts);
      CHECK(r.status == TERN_ERROR);
      CHECK(r.error.find("layer '" + std::string(bad) + "' does not exist") != std::string::npos);
      if (a == "resnet50") {
        CHECK(r.error.find("stem, layer1, layer2, layer3, layer4") != std::string::npos);
      } else {
        CHECK(r.error.find("0.." + layers.back()) != std::string::npos);
      }
      CHECK(r.error.find('\n') == std::string::npos);
    }
    // Any bytes a C caller passes: one line, the name escaped and cut.
    const std::string odd = "layer2\nfake: second line\x01" + std::string(500, 'x');
    opts.layer = odd.c_str();
    const CEmbedding r = c_embed(model, text, opts);
    CHECK(r.status == TERN_ERROR);
    CHECK(r.error.find("layer 'layer2\\x0afake: second line\\x01xxx") != std::string::npos);
    CHECK(r.error.find("...' does not exist") != std::string::npos);
    CHECK(r.error.find('\n') == std::string::npos);
    CHECK(r.error.size() < 300);
    tern_model_free(model);
  }
}
