// Inside the cpu_adam op: one step's constants, already in the form the inner loop uses, and
// the three kernel variants (adam_scalar.cpp, adam_avx2.cpp, adam_avx512.cpp). Each variant
// updates one contiguous range on the calling thread; cpu_adam.cpp splits the work across
// threads and picks the variant.
#pragma once

#include <cstdint>

#include "cpu/common/param_copy.h"
#include "cpu/common/simd_variants.h"

namespace deepspeed::ops::adam_detail {

enum class Decay { None, L2, Decoupled };

struct AdamConstants {
  float beta1;
  float beta2;
  float one_minus_beta1;
  float one_minus_beta2;
  float eps;
  float step_size;  // -lr / bc1
  float bc2_rsqrt;  // 1 / sqrt(bc2)
  float decay;      // L2: weight_decay (times p, added to g); Decoupled: -lr * weight_decay
  float grad_scale; // g = g * grad_scale as it is read
  Decay decay_mode;
  CopyType copy;
};

struct AdamSpan {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  uint16_t* copy;  // null unless AdamConstants::copy is set
  int64_t n;
};

void adam_scalar(const AdamConstants& c, const AdamSpan& s);
#if DS_CPU_X86_VARIANTS
void adam_avx2(const AdamConstants& c, const AdamSpan& s);
void adam_avx512(const AdamConstants& c, const AdamSpan& s);
#endif

}  // namespace deepspeed::ops::adam_detail
