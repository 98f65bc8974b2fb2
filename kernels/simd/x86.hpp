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

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 flags the _mm512_undefined_ps() / _mm256_undefined_pd() placeholders inside its own
// AVX-512 headers as (maybe-)uninitialized once inlined into kernels (GCC PR105593); they are
// intentionally undefined lanes that the instruction overwrites.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
