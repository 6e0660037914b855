// fused_lamb: DeepSpeed's FusedLamb on the GPU, over many fp32 tensors per launch.
//
// LAMB needs each tensor's ||p|| and ||update|| before it can move p, so it runs in three
// launches, none of which synchronises with the host: (1) per chunk, the new moments and
// the update are computed (and not stored) and the chunk's sums of p² and update² written
// to a workspace; (2) per tensor, those sums are added in a fixed order (the result does not
// depend on scheduling) and the trust ratio clamp(||p||/||u||, min_coeff, max_coeff) (1 when
// either norm is 0) is written to `coeffs`; (3) the moments and the update are computed
// again, identically, and stored, with p -= step_size·coeff·u, and the low-precision copy
// written when given. Recomputing costs one extra read of p, g, m and v but no buffer as
// large as the model. Arithmetic as src/optim/lamb.h states it, in float.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/common/dtype.h"

namespace deepspeed::ops::cuda {

struct LambTensor {
  float* param = nullptr;
  const void* grad = nullptr;  // of LambStepArgs::grad_dtype
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  void* param_copy = nullptr;  // of LambStepArgs::copy_dtype, or null (all or none)
  int64_t numel = 0;
};

struct LambStepArgs {
  float beta1 = 0.9f;
  float one_minus_beta1 = 0.1f;  // as AdamStepArgs
  float beta2 = 0.999f;
  float one_minus_beta2 = 0.001f;
  float eps = 1e-8f;
  bool eps_inside_sqrt = false;
  float weight_decay = 0.0f;
  double step_size = 1e-3;  // lr·sqrt(1-β2^t)/(1-β1^t), or lr without bias correction
  double max_coeff = 10.0;
  double min_coeff = 0.01;
  float grad_scale = 1.0f;
  const double* grad_scale_device = nullptr;  // as AdamStepArgs::grad_scale_device
  DType grad_dtype = DType::Float32;
  DType copy_dtype = DType::BFloat16;
};

// Device bytes of the workspace fused_lamb needs for these tensors.
size_t fused_lamb_workspace_bytes(const std::vector<LambTensor>& tensors);

// Enqueues the update on `stream`; `coeffs` (device, one double per tensor) receives each
// tensor's trust ratio; `workspace` (device) holds fused_lamb_workspace_bytes(tensors).
void fused_lamb(const std::vector<LambTensor>& tensors, const LambStepArgs& args, double* coeffs,
                void* workspace, void* stream);

}  // namespace deepspeed::ops::cuda
