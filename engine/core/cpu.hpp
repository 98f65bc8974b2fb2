#pragma once
// CPU feature detection (cpuid + xgetbv, done once) and the ISA cap.
// The active ISA is the best level the CPU and OS support, capped by the environment variable
// TERN_ISA=scalar|avx2|avx512 (read once, at first use) or by set_isa_cap(). Asking for a level
// the CPU lacks is an error, never a silent fallback.
#include <string>

#include "kernels/isa.hpp"

namespace tern {

struct CpuFeatures {
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512bf16 = false, avx512vnni = false;
  bool os_avx = false, os_avx512 = false;  // XCR0 says the OS saves the wider registers
  std::string vendor, brand;
};

const CpuFeatures& cpu_features();

// Highest ISA level this machine can run.
Isa best_supported_isa();
bool isa_supported(Isa isa);

// Parses "scalar" / "avx2" / "avx512" (throws tern::Error on anything else).
Isa parse_isa(const std::string& name);

// The level kernels run at now: min(best supported, cap). Thread-safe.
Isa active_isa();
// Caps the level for the whole process (the API's option and TERN_ISA both land here).
// Throws tern::Error when the CPU does not support `cap`.
void set_isa_cap(Isa cap);

// One line for humans: "avx512 (cpu: AMD EPYC ..., avx2 fma avx512f ...)".
std::string describe_cpu();

}  // namespace tern
