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

}  // namespace tern::cli
