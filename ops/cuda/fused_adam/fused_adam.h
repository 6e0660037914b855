// fused_adam: DeepSpeed's FusedAdam on the GPU. One pass over memory updates many fp32
// tensors per kernel launch (multi-tensor apply): reads the gradient (fp32, fp16 or bf16,
// multiplied by grad_scale), updates exp_avg, exp_avg_sq and the fp32 parameter, and, when a
// low-precision copy is given, writes the new parameter into it as well (the fp16/bf16
// model weights that mixed precision keeps beside fp32 masters), in the same pass.
//
// The arithmetic is FusedAdam's multi_tensor_adam.cu in float, the same as the torch
// expression of src/optim/adam.cpp (see there); results agree with it to float rounding.
// Raw device pointers only (no LibTorch): src/optim/fused_cuda.cpp is the bridge.
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/common/dtype.h"

namespace deepspeed::ops::cuda {

struct AdamTensor {
  float* param = nullptr;
  const void* grad = nullptr;  // of AdamStepArgs::grad_dtype
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  void* param_copy = nullptr;  // of AdamStepArgs::copy_dtype, or null
  int64_t numel = 0;
};

struct AdamStepArgs {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float one_minus_beta1 = 0.1f;  // 1 - β1 rounded once from double (not 1.0f - beta1)
  float beta2 = 0.999f;
  float one_minus_beta2 = 0.001f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  bool adamw_mode = true;       // decoupled weight decay (AdamW); else L2 added to the gradient
  float bias_correction1 = 1;   // 1 - beta1^step (1 without bias correction)
  float bias_correction2 = 1;   // 1 - beta2^step
  float grad_scale = 1.0f;      // the gradient is multiplied by this first (unscale and clip)
  // When set (device memory), the gradient is multiplied by float(*grad_scale_device) instead:
  // a factor computed on the GPU (gradient clipping) needs no host synchronisation.
  const double* grad_scale_device = nullptr;
  DType grad_dtype = DType::Float32;
  DType copy_dtype = DType::BFloat16;  // used only by tensors with a param_copy
};

// Enqueues the update of every tensor on `stream` (a cudaStream_t). Every tensor with a
// param_copy must have one (all or none); throws std::runtime_error on a launch failure.
void fused_adam(const std::vector<AdamTensor>& tensors, const AdamStepArgs& args, void* stream);

}  // namespace deepspeed::ops::cuda
