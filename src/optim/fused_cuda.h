// The bridge from src/optim to the CUDA fused optimizer ops (ops/cuda/fused_adam,
// ops/cuda/fused_lamb): checks that tensors suit them and launches them on the current CUDA
// stream. In a build without those ops, available() is false and nothing else is called.
#pragma once

#include <vector>

#include <torch/types.h>

namespace deepspeed::fused_cuda_detail {

// One tensor's update: fp32 parameter and moments; the gradient (fp32, fp16 or bf16) may
// belong to another tensor (a half-precision model's .grad()); `copy`, when defined,
// receives the updated parameter in its own dtype.
struct Item {
  torch::Tensor param, grad, exp_avg, exp_avg_sq, copy;
};

bool adam_available();
bool lamb_available();

// True when the fused ops can update this tensor: param and moments dense, contiguous fp32 on
// one CUDA device, not inference tensors; grad and copy (if defined) dense and contiguous
// on that device, of the same element count, and of a float type.
bool can_update(const Item& item);

// grad_scale: a 0-dim float64 tensor (on the CPU, or on the items' GPU: read there), or
// undefined for 1.
struct AdamScalars {
  double lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2;
  torch::Tensor grad_scale;
  bool adamw_mode;
};
// Enqueues the update of every item (can_update must hold for each) on the current stream.
void adam(const std::vector<Item>& items, const AdamScalars& s);

struct LambScalars {
  double beta1, beta2, eps, weight_decay, step_size, max_coeff, min_coeff;
  torch::Tensor grad_scale;
  bool eps_inside_sqrt;
};
// As adam(); returns the trust ratio of each item (a CUDA float64 tensor, not yet synchronised).
torch::Tensor lamb(const std::vector<Item>& items, const LambScalars& s);

// Σ x² over every element of every (defined) tensor, all on one GPU, fp32/fp16/bf16, as a
// 0-dim float64 tensor on that GPU, in two launches per dtype and without synchronising.
bool norm_available();
torch::Tensor squared_norm(const std::vector<torch::Tensor>& tensors);

}  // namespace deepspeed::fused_cuda_detail
