// Which x86 kernel variants (AVX2, AVX-512) this build compiles beside the scalar one, and
// the three builds of one CPU kernel indexed by SIMD level (simd_level.h says how the level
// is chosen). Each op names its variants once instead of switching over the levels:
//
//   constexpr SimdVariants<Kernel> kAdam = DS_SIMD_VARIANTS(adam_detail::adam);
//   kAdam[resolve_simd_level(level)](constants, span);
//
// ops/CMakeLists.txt defines DS_CPU_X86_VARIANTS to match the files it compiles; without it
// (a compile by hand) the target processor decides, as the CMake test does. Where the x86
// variants are not built, every slot holds the scalar build: resolve_simd_level never
// returns another level there.
#pragma once

#ifndef DS_CPU_X86_VARIANTS
#if defined(__x86_64__) || defined(_M_X64)
#define DS_CPU_X86_VARIANTS 1
#else
#define DS_CPU_X86_VARIANTS 0
#endif
#endif

// `name` is the variants' common prefix: name_avx512, name_avx2, name_scalar.
#if DS_CPU_X86_VARIANTS
#define DS_SIMD_VARIANTS(name) {name##_avx512, name##_avx2, name##_scalar}
#else
#define DS_SIMD_VARIANTS(name) {name##_scalar, name##_scalar, name##_scalar}
#endif

#include "cpu/common/simd_level.h"

namespace deepspeed::ops {

template <class Fn>
struct SimdVariants {
  Fn avx512;
  Fn avx2;
  Fn scalar;

  constexpr Fn operator[](SimdLevel level) const {
    switch (level) {
      case SimdLevel::Avx512:
        return avx512;
      case SimdLevel::Avx2:
        return avx2;
      case SimdLevel::Scalar:
        break;
    }
    return scalar;
  }
};

}  // namespace deepspeed::ops
