// Inside squared_sum: one block's sum of squares, once per SIMD variant
// (squared_sum_scalar.cpp, squared_sum_avx2.cpp, squared_sum_avx512.cpp, each compiling
// squared_sum_block_body.h with its own -m flags).
#pragma once

#include <cstdint>

#include "cpu/common/simd_variants.h"

namespace deepspeed::ops::squared_sum_detail {

double block_scalar(const float* x, int64_t n);
#if DS_CPU_X86_VARIANTS
double block_avx2(const float* x, int64_t n);
double block_avx512(const float* x, int64_t n);
#endif

}  // namespace deepspeed::ops::squared_sum_detail
