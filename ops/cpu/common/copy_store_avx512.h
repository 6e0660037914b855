// Stores 16 floats as bf16 or IEEE half (round to nearest even), for the AVX-512 kernel
// variants. Only files compiled with -mavx512f include this; internal linkage for the reason
// half_convert.h gives.
#pragma once

#if !defined(__AVX512F__)
#error "copy_store_avx512.h is for files compiled with -mavx512f"
#endif

#include "cpu/common/avx512_intrinsics.h"

#include <cstdint>

#include "cpu/common/param_copy.h"

namespace deepspeed::ops::avx512 {

// float_to_bf16 of half_convert.h, 16 lanes at a time.
static inline __m256i to_bf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd);
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_blend_epi32(nan, r, _mm512_set1_epi32(0x7FC0));
  return _mm512_cvtepi32_epi16(r);  // each lane is below 2^16: narrowing only
}

template <CopyType kCopy>
static inline void store_copy(uint16_t* dst, __m512 x) {
  if constexpr (kCopy == CopyType::BFloat16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), to_bf16(x));
  } else if constexpr (kCopy == CopyType::Float16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                        _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
}

}  // namespace deepspeed::ops::avx512
