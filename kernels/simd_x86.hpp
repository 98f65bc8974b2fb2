#pragma once
// The one include for x86 intrinsics in per-ISA kernel files.
// TERN_EMULATE_AVX512: the test build that runs the AVX-512 kernels on a machine without AVX-512
// compiles them against SIMDe (SIMD Everywhere), which implements the _mm512_* intrinsics with
// AVX2. Same source, same logic, checked against the scalar reference; only the speed differs.
#if defined(TERN_EMULATE_AVX512)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/fma.h>
#else
#include <immintrin.h>
#endif
