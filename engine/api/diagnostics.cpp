// Machine diagnostics of the public API (tern.hpp): what benchmarks measure against.
#include "engine/core/cpu.hpp"
#include "engine/core/error.hpp"
#include "kernels/peak/peak.hpp"
#include "tern/tern.hpp"

namespace tern {

double fma_peak_gflops(int threads, const std::string& isa) {
  if (threads < 1) fail("fma_peak_gflops: threads must be at least 1, got ", threads);
  const Isa level = isa.empty() ? active_isa() : parse_isa(isa);
  if (!isa_supported(level))
    fail("fma_peak_gflops: ISA ", isa_name(level),
         " is not supported by this CPU (best: ", isa_name(best_supported_isa()), ")");
  return peak::measure_fma_peak_gflops(level, threads);
}

}  // namespace tern
