#pragma once
// `tern bench MODEL.tern`: times the real forward pass of a model through the public API on a
// synthetic input and reports load time, latency (min, median, p90), throughput, GFLOP/s, the
// fraction of the machine's FMA peak (measured in the same run) and peak resident memory.
//
//   tern bench MODEL.tern [--batch N] [--seq-len N] [--image-size N] [--threads N]
//                         [--warmup N] [--iters N] [--json]
//
// --json prints one object: model, architecture, isa, batch, threads, seq_len (text) or
// image_size (images), warmup, iters, load_ms, min_ms, median_ms, p90_ms, mean_ms, times_ms,
// items_per_s, gflop_per_forward, gflops, peak_gflops, fraction_of_peak, peak_rss_mb.
#include <cstdint>
#include <string>

#include "engine/cli/commands.hpp"

namespace tern::cli {

int bench_model(const Args& args);

// FLOPs (1 MAC = 2 FLOP) of one forward pass over `batch` inputs, from the model's config (the
// weight file's "config" metadata, JSON text). Counts convolutions, linear layers and the two
// attention matmuls; elementwise work (norms, activations, softmax, pooling) is left out, as in
// the usual published figures (ResNet50 at 224: 4.09 GMAC; ViT-B/16: 17.56 GMAC; DistilBERT at
// 128 tokens: 5.59 GMAC). Throws tern::Error naming a missing or invalid config key.
double forward_flops(const std::string& architecture, const std::string& config_json, int64_t batch,
                     int64_t seq_len, int64_t image_h, int64_t image_w);

}  // namespace tern::cli
