// The portable variant of the Adagrad kernel (no -m flags): any x86-64 CPU, and every other
// processor. The compiler may still vectorise it with the baseline instruction set (SSE2).
#include <cmath>

#include "cpu/common/half_convert.h"
#include "cpu/common/static_switch.h"
#include "cpu/cpu_adagrad/adagrad_kernels.h"

namespace deepspeed::ops::adagrad_detail {
namespace {

template <bool kDecay, CopyType kCopy>
void run(const AdagradConstants& c, const AdagradSpan& s) {
  // The arrays never overlap (cpu_adagrad.h): saying so lets the loop vectorise without
  // run-time overlap checks.
  float* __restrict param = s.param;
  const float* __restrict grad = s.grad;
  float* __restrict sum = s.sum;
  uint16_t* __restrict copy = s.copy;
  for (int64_t i = 0; i < s.n; ++i) {
    float g = grad[i];
    float p = param[i];
    float v = sum[i];
    if constexpr (kDecay) g = p * c.weight_decay + g;
    v = g * g + v;
    p = g / (std::sqrt(v) + c.eps) * c.step_size + p;
    param[i] = p;
    sum[i] = v;
    if constexpr (kCopy == CopyType::BFloat16) copy[i] = half::float_to_bf16(p);
    if constexpr (kCopy == CopyType::Float16) copy[i] = half::float_to_half(p);
  }
}

template <bool kDecay>
void run_decay(const AdagradConstants& c, const AdagradSpan& s) {
  with_copy_type(c.copy, [&](auto copy) { run<kDecay, decltype(copy)::value>(c, s); });
}

}  // namespace

void adagrad_scalar(const AdagradConstants& c, const AdagradSpan& s) {
  if (c.decay) {
    run_decay<true>(c, s);
  } else {
    run_decay<false>(c, s);
  }
}

}  // namespace deepspeed::ops::adagrad_detail
