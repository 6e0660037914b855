// DeepSpeed's cpu_adam op: Adam and AdamW over fp32 arrays on the CPU, in one pass that
// reads the parameter, gradient and both moments once and writes the parameter, the moments
// and (optionally) a bf16/fp16 copy of the parameter. SIMD (AVX-512, AVX2, scalar; see
// cpu/common/simd_level.h) and OpenMP across cores (OMP_NUM_THREADS).
//
// Arithmetic, element by element, as DeepSpeed's Adam_Optimizer::Step_AVX (csrc/includes/
// cpu_adam.h), with bc1 = 1 - beta1^step and bc2 = 1 - beta2^step (both 1 without bias
// correction), computed in double and rounded once to float:
//   g = g * grad_scale                              (the unscale/clip factor; 1 by default)
//   L2 mode (adamw_mode false, weight_decay != 0): g = g + weight_decay * p
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   AdamW (adamw_mode, weight_decay != 0):          p = p - lr * weight_decay * p
//   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// which is src/optim/adam.h's update (FusedAdam's ordering) up to float rounding.
//
//   AdamStep s{.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01,
//              .adamw_mode = true, .bias_correction = true, .step = 1};
//   adam_step(p, g, m, v, n, s);                                    // best SIMD level
//   adam_step(p, g, m, v, n, s, bf16_out, CopyType::BFloat16);      // plus the bf16 copy
//
// The arrays must not overlap; n may be 0. Results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <optional>

#include "cpu/common/param_copy.h"
#include "cpu/common/simd_level.h"

namespace deepspeed::ops {

struct AdamStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool adamw_mode = true;  // decoupled weight decay; false: L2 (added to the gradient)
  bool bias_correction = true;
  int64_t step = 1;  // this step's number, counted from 1
  // Multiplies the gradient as it is read (the loss-scale and clipping factor), so that the
  // caller needs no pass of its own over the gradients.
  double grad_scale = 1.0;
};

// Updates param, exp_avg and exp_avg_sq in place from grad. With copy != None, param_copy
// (n uint16_t) receives the updated parameters in that format. `level` forces a SIMD level
// (a SimdError if it cannot run here); without it DS_CPU_SIMD or the best level is used.
// Throws std::invalid_argument for n < 0, a null array with n > 0, or a step below 1.
void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
               const AdamStep& step, void* param_copy = nullptr, CopyType copy = CopyType::None,
               std::optional<SimdLevel> level = std::nullopt);

}  // namespace deepspeed::ops
