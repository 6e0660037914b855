// Inside the cpu_adagrad op: one step's constants and the three kernel variants
// (adagrad_scalar.cpp, adagrad_avx2.cpp, adagrad_avx512.cpp), each updating one contiguous
// range on the calling thread.
#pragma once

#include <cstdint>

#include "cpu/common/param_copy.h"
#include "cpu/common/simd_variants.h"

namespace deepspeed::ops::adagrad_detail {

struct AdagradConstants {
  float step_size;  // -lr
  float eps;
  float weight_decay;  // 0: no decay
  bool decay;          // weight_decay != 0
  CopyType copy;
};

struct AdagradSpan {
  float* param;
  const float* grad;
  float* sum;
  uint16_t* copy;  // null unless AdagradConstants::copy is set
  int64_t n;
};

void adagrad_scalar(const AdagradConstants& c, const AdagradSpan& s);
#if DS_CPU_X86_VARIANTS
void adagrad_avx2(const AdagradConstants& c, const AdagradSpan& s);
void adagrad_avx512(const AdagradConstants& c, const AdagradSpan& s);
#endif

}  // namespace deepspeed::ops::adagrad_detail
