#pragma once
// Instruction-set levels that kernels are compiled for. A kernel family (one folder, one namespace)
// provides one implementation per level in files named *_scalar.cpp, *_avx2.cpp, *_avx512.cpp;
// only those files get -m flags (see CMakeLists.txt). Each defines its level's config struct of
// function pointers, and the family's xxx_config(isa) picks one (docs/KERNELS.md). Which level
// runs is decided once by the engine (engine/core/cpu.hpp: detection + the TERN_ISA cap) and
// passed down; kernels never probe the CPU.
#include <cstdint>

namespace tern {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

inline constexpr Isa kAllIsas[] = {Isa::scalar, Isa::avx2, Isa::avx512};

}  // namespace tern
