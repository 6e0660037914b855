// The portable variant of the Lion kernel (no -m flags): any x86-64 CPU, and every other
// processor. The compiler may still vectorise it with the baseline instruction set (SSE2).
#include "cpu/common/half_convert.h"
#include "cpu/common/static_switch.h"
#include "cpu/cpu_lion/lion_kernels.h"

namespace deepspeed::ops::lion_detail {
namespace {

template <CopyType kCopy>
void run(const LionConstants& c, const LionSpan& s) {
  // The arrays never overlap (cpu_lion.h): saying so lets the loop vectorise without
  // run-time overlap checks.
  float* __restrict param = s.param;
  const float* __restrict grad = s.grad;
  float* __restrict exp_avg = s.exp_avg;
  uint16_t* __restrict copy = s.copy;
  for (int64_t i = 0; i < s.n; ++i) {
    const float g = grad[i];
    float p = param[i];
    float m = exp_avg[i];
    const float mix = g * c.one_minus_beta1 + m * c.beta1;
    // -lr * sign(mix) with sign(0) = 0 and sign(NaN) = NaN.
    const float step = mix > 0.0f ? -c.lr : mix < 0.0f ? c.lr : mix != mix ? mix : 0.0f;
    p = p * c.after_decay + step;
    m = g * c.one_minus_beta2 + m * c.beta2;
    param[i] = p;
    exp_avg[i] = m;
    if constexpr (kCopy == CopyType::BFloat16) copy[i] = half::float_to_bf16(p);
    if constexpr (kCopy == CopyType::Float16) copy[i] = half::float_to_half(p);
  }
}

}  // namespace

void lion_scalar(const LionConstants& c, const LionSpan& s) {
  with_copy_type(c.copy, [&](auto copy) { run<decltype(copy)::value>(c, s); });
}

}  // namespace deepspeed::ops::lion_detail
