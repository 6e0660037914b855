// Stores 8 floats as bf16 or IEEE half (round to nearest even), for the AVX2 kernel
// variants. Only files compiled with -mavx2 -mf16c include this; internal linkage for the
// reason half_convert.h gives.
#pragma once

#if !defined(__AVX2__) || !defined(__F16C__)
#error "copy_store_avx2.h is for files compiled with -mavx2 -mf16c"
#endif

#include <immintrin.h>

#include <cstdint>

#include "cpu/common/param_copy.h"

namespace deepspeed::ops::avx2 {

// float_to_bf16 of half_convert.h, 8 lanes at a time.
static inline __m128i to_bf16(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd);
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), nan);
  // Each lane is now below 2^16, so the saturating pack only narrows.
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

template <CopyType kCopy>
static inline void store_copy(uint16_t* dst, __m256 x) {
  if constexpr (kCopy == CopyType::BFloat16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), to_bf16(x));
  } else if constexpr (kCopy == CopyType::Float16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                     _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
}

}  // namespace deepspeed::ops::avx2
