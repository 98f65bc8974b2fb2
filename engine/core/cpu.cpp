#include "engine/core/cpu.hpp"

#include <cpuid.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>

#include "engine/core/error.hpp"

namespace tern {
namespace {

uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  f.vendor = vendor;

  __get_cpuid(1, &a, &b, &c, &d);
  f.sse42 = c & bit_SSE4_2;
  f.fma = c & bit_FMA;
  f.f16c = c & bit_F16C;
  const bool osxsave = c & bit_OSXSAVE;
  f.avx = c & bit_AVX;
  if (osxsave) {
    const uint64_t xcr0 = read_xcr0();
    f.os_avx = (xcr0 & 0x6) == 0x6;             // XMM and YMM state
    f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  }
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    f.avx2 = b & bit_AVX2;
    f.avx512f = b & bit_AVX512F;
    f.avx512dq = b & bit_AVX512DQ;
    f.avx512bw = b & bit_AVX512BW;
    f.avx512vl = b & bit_AVX512VL;
    f.avx512vnni = c & bit_AVX512VNNI;
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    f.avx512bf16 = a & (1u << 5);
  }
  if (!f.os_avx) f.avx = f.avx2 = f.fma = f.f16c = false;
  if (!f.os_avx512) f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512bf16 = f.avx512vnni = false;

  unsigned brand[12] = {};
  if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
    for (unsigned i = 0; i < 3; ++i)
      __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
    std::string s(reinterpret_cast<const char*>(brand), sizeof(brand));
    s = s.c_str();
    const auto first = s.find_first_not_of(' ');
    f.brand = first == std::string::npos ? "" : s.substr(first);
  }
  return f;
}

std::atomic<int> g_cap{-1};  // -1: not yet read from the environment
std::once_flag g_env_once;

void read_env_cap() {
  std::call_once(g_env_once, [] {
    const char* env = std::getenv("TERN_ISA");
    int cap = static_cast<int>(best_supported_isa());
    if (env != nullptr && *env != '\0') {
      const Isa want = parse_isa(env);
      if (!isa_supported(want))
        fail("TERN_ISA=", env, ": this CPU does not support ", isa_name(want), " (best: ",
             isa_name(best_supported_isa()), ")");
      cap = static_cast<int>(want);
    }
    int expected = -1;
    g_cap.compare_exchange_strong(expected, cap);
  });
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::avx512:
#if defined(TERN_EMULATE_AVX512)
      return isa_supported(Isa::avx2);  // the AVX-512 kernels run through SIMDe (tests only)
#else
      return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && isa_supported(Isa::avx2);
#endif
  }
  return false;
}

Isa best_supported_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::scalar;
}

Isa parse_isa(const std::string& name) {
  for (Isa isa : kAllIsas)
    if (name == isa_name(isa)) return isa;
  fail("unknown ISA '", name, "' (expected scalar, avx2 or avx512)");
}

Isa active_isa() {
  read_env_cap();
  return static_cast<Isa>(g_cap.load(std::memory_order_relaxed));
}

void set_isa_cap(Isa cap) {
  if (!isa_supported(cap))
    fail("ISA ", isa_name(cap), " is not supported by this CPU (best: ",
         isa_name(best_supported_isa()), ")");
  read_env_cap();
  g_cap.store(static_cast<int>(cap), std::memory_order_relaxed);
}

std::string describe_cpu() {
  const CpuFeatures& f = cpu_features();
  std::ostringstream os;
  os << "cpu: " << (f.brand.empty() ? f.vendor : f.brand) << "\nfeatures:";
  const std::pair<const char*, bool> flags[] = {
      {"avx2", f.avx2},         {"fma", f.fma},           {"f16c", f.f16c},
      {"avx512f", f.avx512f},   {"avx512bw", f.avx512bw}, {"avx512vl", f.avx512vl},
      {"avx512dq", f.avx512dq}, {"avx512_bf16", f.avx512bf16}, {"avx512_vnni", f.avx512vnni}};
  for (const auto& [name, on] : flags)
    if (on) os << ' ' << name;
  os << "\nbest isa: " << isa_name(best_supported_isa()) << "\nactive isa: " << isa_name(active_isa());
  return os.str();
}

}  // namespace tern
