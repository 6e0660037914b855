// DeepSpeed's cpu_adagrad op: Adagrad over fp32 arrays on the CPU, in one pass that reads
// the parameter, gradient and squared-gradient sum once and writes the parameter, the sum and
// (optionally) a bf16/fp16 copy of the parameter. SIMD (AVX-512, AVX2, scalar; see
// cpu/common/simd_level.h) and OpenMP across cores (OMP_NUM_THREADS).
//
// Arithmetic, element by element (src/optim/adagrad.h, torch.optim.Adagrad):
//   g = g + weight_decay * p                       (when weight_decay != 0)
//   sum = sum + g * g
//   p = p - lr * g / (sqrt(sum) + eps)
// `lr` is the step's learning rate after torch's lr_decay (lr / (1 + (t-1) * lr_decay)).
// DeepSpeed's own kernel (csrc/adagrad/cpu_adagrad.cpp) divides the gradient *before* weight
// decay in the last line; this op keeps src/optim's (torch's) meaning, which differs only
// when weight_decay != 0.
//
//   adagrad_step(p, g, sum, n, AdagradStep{.lr = 1e-2, .eps = 1e-10});
//
// The arrays must not overlap; n may be 0. Results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <optional>

#include "cpu/common/param_copy.h"
#include "cpu/common/simd_level.h"

namespace deepspeed::ops {

struct AdagradStep {
  double lr = 1e-2;
  double eps = 1e-10;
  double weight_decay = 0.0;
};

// Updates param and sum (torch's state "sum"; DeepSpeed's exp_avg_sq) in place from grad.
// param_copy, copy and level as for adam_step (cpu/cpu_adam/cpu_adam.h).
// Throws std::invalid_argument for n < 0 or a null array with n > 0.
void adagrad_step(float* param, const float* grad, float* sum, int64_t n, const AdagradStep& step,
                  void* param_copy = nullptr, CopyType copy = CopyType::None,
                  std::optional<SimdLevel> level = std::nullopt);

}  // namespace deepspeed::ops
