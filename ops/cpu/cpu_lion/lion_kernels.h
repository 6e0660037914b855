// Inside the cpu_lion op: one step's constants and the three kernel variants
// (lion_scalar.cpp, lion_avx2.cpp, lion_avx512.cpp), each updating one contiguous range on
// the calling thread.
#pragma once

#include <cstdint>

#include "cpu/common/param_copy.h"
#include "cpu/common/simd_variants.h"

namespace deepspeed::ops::lion_detail {

struct LionConstants {
  float lr;
  float beta1;
  float beta2;
  float one_minus_beta1;
  float one_minus_beta2;
  float after_decay;  // 1 - lr * weight_decay (exactly 1 without decay)
  CopyType copy;
};

struct LionSpan {
  float* param;
  const float* grad;
  float* exp_avg;
  uint16_t* copy;  // null unless LionConstants::copy is set
  int64_t n;
};

void lion_scalar(const LionConstants& c, const LionSpan& s);
#if DS_CPU_X86_VARIANTS
void lion_avx2(const LionConstants& c, const LionSpan& s);
void lion_avx512(const LionConstants& c, const LionSpan& s);
#endif

}  // namespace deepspeed::ops::lion_detail
