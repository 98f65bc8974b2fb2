// Test tool: runs a model on an input tensor saved as .npy and writes the output as .npy, so the
// Python parity tests can feed Tern and PyTorch the very same input. Goes through the public API.
//   tern_run_model MODEL.tern IN.npy OUT.npy [--lengths L.npy] [--threads N] [--logits]
//                  [--concurrent K] [--layer L] [--pooling P] [--repeat R]
// --concurrent K: also runs the same input from K threads at once on the one loaded model and
// fails (exit 3) unless every result is bit-identical to the serial one.
// Image models: IN float32 [N,3,H,W] -> resnet50 [N,2048] (or logits), vit [N,T,D] (all tokens).
// distilbert: IN int32/int64 [N,T] ids (+ lengths int32 [N]) -> [N,T,D], rows past a length are 0.
// --layer L: EmbedOptions::layer (stop at that layer). --pooling P: EmbedOptions::pooling
// (none|cls|mean|max|mean_sqrt_len|default) instead of the defaults above; pooled outputs are
// [N, D], a ResNet feature map [N, C, H, W], unpooled texts [N, T, D] padded with zeros.
// --repeat R: runs the forward R more times and prints the fastest and the median wall time of
// those runs (ms) on stderr, for timing one configuration.
// The ISA comes from TERN_ISA.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/npy.hpp"
#include "engine/frontend/output.hpp"
#include "tern/tern.hpp"

int main(int argc, char** argv) {
  try {
    if (argc < 4) {
      std::fprintf(
          stderr,
          "usage: %s MODEL.tern IN.npy OUT.npy [--lengths L.npy] [--threads N] [--logits]\n"
          "       [--concurrent K] [--layer L] [--pooling P] [--repeat R]\n",
          argv[0]);
      return 2;
    }
    std::string lengths_path;
    int concurrent = 0, repeat = 0;
    bool pooling_given = false;
    tern::Options options;
    tern::EmbedOptions opts;
    for (int i = 4; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--lengths" && i + 1 < argc)
        lengths_path = argv[++i];
      else if (a == "--threads" && i + 1 < argc)
        options.threads = std::stoi(argv[++i]);
      else if (a == "--logits")
        opts.logits = true;
      else if (a == "--concurrent" && i + 1 < argc)
        concurrent = std::stoi(argv[++i]);
      else if (a == "--layer" && i + 1 < argc)
        opts.layer = argv[++i];
      else if (a == "--pooling" && i + 1 < argc) {
        opts.pooling = tern::parse_pooling(argv[++i]);
        pooling_given = true;
      } else if (a == "--repeat" && i + 1 < argc)
        repeat = std::stoi(argv[++i]);
      else
        throw tern::Error("unknown argument " + a);
    }
    auto model = tern::Model::load(argv[1], options);
    const tern::NpyArray in = tern::read_npy(argv[2]);
    // compute() is called from several threads with --concurrent: it writes only its locals.
    auto compute = [&](tern::EmbedOptions opts, std::vector<int64_t>& shape) {
      std::vector<float> out;
      if (model->is_image_model()) {
        if (in.shape.size() != 4 || in.shape[1] != 3) throw tern::Error("input must be [N,3,H,W]");
        const std::vector<float> x = in.as_f32();
        if (!pooling_given)
          opts.pooling = model->architecture() == "vit_b_16" && !opts.logits
                             ? tern::Pooling::none
                             : tern::Pooling::model_default;
        opts.batch = static_cast<int>(in.shape[0]);
        auto embs =
            model->embed_preprocessed(x.data(), in.shape[0], in.shape[2], in.shape[3], opts);
        shape = {in.shape[0]};
        for (int64_t d : embs.at(0).shape) shape.push_back(d);
        for (const auto& e : embs) out.insert(out.end(), e.values.begin(), e.values.end());
      } else {
        if (in.shape.size() != 2) throw tern::Error("input must be [N,T] token ids");
        const int64_t n = in.shape[0], t = in.shape[1];
        const std::vector<int32_t> ids = in.as_i32();
        std::vector<int32_t> lengths(n, static_cast<int32_t>(t));
        if (!lengths_path.empty()) lengths = tern::read_npy(lengths_path).as_i32();
        std::vector<std::vector<int32_t>> rows(n);
        for (int64_t i = 0; i < n; ++i)
          rows[i].assign(ids.begin() + i * t, ids.begin() + i * t + lengths.at(i));
        if (!pooling_given) opts.pooling = tern::Pooling::none;
        opts.batch = static_cast<int>(n);
        auto embs = model->embed_token_ids(rows, opts);
        if (embs.at(0).shape.size() == 1) {  // pooled: [N, D]
          shape = {n, embs[0].shape[0]};
          for (const auto& e : embs) out.insert(out.end(), e.values.begin(), e.values.end());
          return out;
        }
        const int64_t d = embs[0].shape.at(1);
        shape = {n, t, d};
        out.assign(n * t * d, 0.f);
        for (int64_t i = 0; i < n; ++i)
          std::memcpy(out.data() + i * t * d, embs[i].values.data(),
                      embs[i].values.size() * sizeof(float));
      }
      return out;
    };
    std::vector<int64_t> shape;
    const std::vector<float> out = compute(opts, shape);
    if (repeat > 0) {
      std::vector<double> ms;
      for (int r = 0; r < repeat; ++r) {
        std::vector<int64_t> ignored;
        const auto t0 = std::chrono::steady_clock::now();
        compute(opts, ignored);
        const auto t1 = std::chrono::steady_clock::now();
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      std::fprintf(stderr, "tern_run_model: %d runs: min %.2f ms, median %.2f ms\n", repeat,
                   ms.front(), ms[ms.size() / 2]);
    }
    if (concurrent > 0) {
      std::vector<std::vector<float>> results(concurrent);
      std::vector<std::thread> threads;
      for (int k = 0; k < concurrent; ++k)
        threads.emplace_back([&, k] {
          std::vector<int64_t> ignored;
          results[k] = compute(opts, ignored);
        });
      for (auto& t : threads) t.join();
      for (int k = 0; k < concurrent; ++k)
        if (results[k] != out) {
          std::fprintf(stderr, "tern_run_model: concurrent run %d differs from the serial run\n",
                       k);
          return 3;
        }
    }
    tern::frontend::write_npy_f32(argv[3], out.data(), shape);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tern_run_model: error: %s\n", e.what());
    return 1;
  }
}
