// The portable variant of the Adam kernel (no -m flags): any x86-64 CPU, and every other
// processor. The compiler may still vectorise it with the baseline instruction set (SSE2).
#include <cmath>

#include "cpu/common/half_convert.h"
#include "cpu/common/static_switch.h"
#include "cpu/cpu_adam/adam_kernels.h"

namespace deepspeed::ops::adam_detail {
namespace {

template <Decay kDecay, CopyType kCopy>
void run(const AdamConstants& c, const AdamSpan& s) {
  // The arrays never overlap (cpu_adam.h): saying so lets the loop vectorise without
  // run-time overlap checks.
  float* __restrict param = s.param;
  const float* __restrict grad = s.grad;
  float* __restrict exp_avg = s.exp_avg;
  float* __restrict exp_avg_sq = s.exp_avg_sq;
  uint16_t* __restrict copy = s.copy;
  for (int64_t i = 0; i < s.n; ++i) {
    float g = grad[i] * c.grad_scale;
    float p = param[i];
    float m = exp_avg[i];
    float v = exp_avg_sq[i];
    if constexpr (kDecay == Decay::L2) g = p * c.decay + g;
    m = g * c.one_minus_beta1 + m * c.beta1;
    v = (g * g) * c.one_minus_beta2 + v * c.beta2;
    const float update = m / (std::sqrt(v) * c.bc2_rsqrt + c.eps);
    if constexpr (kDecay == Decay::Decoupled) p = p * c.decay + p;
    p = update * c.step_size + p;
    param[i] = p;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    if constexpr (kCopy == CopyType::BFloat16) copy[i] = half::float_to_bf16(p);
    if constexpr (kCopy == CopyType::Float16) copy[i] = half::float_to_half(p);
  }
}

template <Decay kDecay>
void run_decay(const AdamConstants& c, const AdamSpan& s) {
  with_copy_type(c.copy, [&](auto copy) { run<kDecay, decltype(copy)::value>(c, s); });
}

}  // namespace

void adam_scalar(const AdamConstants& c, const AdamSpan& s) {
  switch (c.decay_mode) {
    case Decay::None:
      return run_decay<Decay::None>(c, s);
    case Decay::L2:
      return run_decay<Decay::L2>(c, s);
    case Decay::Decoupled:
      return run_decay<Decay::Decoupled>(c, s);
  }
}

}  // namespace deepspeed::ops::adam_detail
