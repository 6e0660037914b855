// DeepSpeed's cpu_lion op: Lion over fp32 arrays on the CPU, in one pass that reads the
// parameter, gradient and momentum once and writes the parameter, the momentum and
// (optionally) a bf16/fp16 copy of the parameter. SIMD (AVX-512, AVX2, scalar; see
// cpu/common/simd_level.h) and OpenMP across cores (OMP_NUM_THREADS).
//
// Arithmetic, element by element (src/optim/lion.h; DeepSpeed's Lion_Optimizer):
//   c = beta1 * m + (1 - beta1) * g
//   p = p * (1 - lr * weight_decay) - lr * sign(c)
//   m = beta2 * m + (1 - beta2) * g
// sign(0) is 0 and sign(NaN) is NaN, as torch.sign and src/optim; DeepSpeed's kernel uses
// -copysign(lr, c) and so moves an element whose c is +0 by -lr.
//
//   lion_step(p, g, m, n, LionStep{.lr = 1e-4, .beta1 = 0.9, .beta2 = 0.99});
//
// The arrays must not overlap; n may be 0. Results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <optional>

#include "cpu/common/param_copy.h"
#include "cpu/common/simd_level.h"

namespace deepspeed::ops {

struct LionStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double weight_decay = 0.0;
};

// Updates param and exp_avg in place from grad. param_copy, copy and level as for adam_step
// (cpu/cpu_adam/cpu_adam.h). Throws std::invalid_argument for n < 0 or a null array with
// n > 0.
void lion_step(float* param, const float* grad, float* exp_avg, int64_t n, const LionStep& step,
               void* param_copy = nullptr, CopyType copy = CopyType::None,
               std::optional<SimdLevel> level = std::nullopt);

}  // namespace deepspeed::ops
