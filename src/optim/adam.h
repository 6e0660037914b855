// Adam and AdamW as DeepSpeed runs them: FusedAdam (GPU) / DeepSpeedCPUAdam (offload), or
// torch.optim.Adam / AdamW when the config says "torch_adam": true.
//
// Per tensor, with g the gradient, t the step, bc1 = 1 - β1^t, bc2 = 1 - β2^t (1 when
// bias_correction is off):
//   Adam (L2):       g += wd·p
//   m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
//   update = (m/bc1) / (sqrt(v/bc2) + eps)
//   AdamW:           update += wd·p            (decoupled: p ← p - lr·wd·p - lr·adam)
//   p -= lr·update
// torch_adam runs torch's ordering of the same arithmetic (AdamW: p *= 1 - lr·wd first;
// p -= lr/bc1 · m / (sqrt(v)/sqrt(bc2) + eps)).
// Without torch_adam, an fp32 CPU tensor (contiguous, with fp32 gradient and states) is
// updated by the cpu_adam op (ops/cpu/cpu_adam/cpu_adam.h: SIMD, OpenMP, one pass over
// memory); it computes the same update in DeepSpeedCPUAdam's order, equal up to float
// rounding. Everything else, and every tensor when DS_BUILD_CPU_ADAM=0, runs the torch
// expression. On the GPU (fp32 CUDA tensors; not with torch_adam), a whole group is updated by
// the fused_adam op (ops/cuda/fused_adam: multi-tensor, one pass, equal to the expression up
// to float rounding), which also takes step_from's half-precision gradients and copies.
// The state ("step", "exp_avg", "exp_avg_sq") is the same either way.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "deepspeed/optimizer.h"

namespace deepspeed {

struct AdamOptions {
  bool adamw_mode = true;   // decoupled weight decay
  bool torch_adam = false;  // torch.optim.Adam/AdamW ordering (and class name)
  bool cpu_offload = false; // DeepSpeedCPUAdam (class name only)
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, AdamOptions options);

  // From a ds_config "optimizer" section: `adamw_type` is true for type "AdamW".
  static std::unique_ptr<Optimizer> create(bool adamw_type, const nlohmann::json& params,
                                           std::vector<ParamGroup> groups,
                                           const OptimizerOptions& options);

  void step() override;
  using Optimizer::step_from;
  void step_from(const std::vector<torch::Tensor>& grads, const torch::Tensor& grad_scale,
                 const std::vector<torch::Tensor>& copies) override;
  std::string name() const override { return options_.adamw_mode ? "AdamW" : "Adam"; }
  std::string class_name() const override;
  const AdamOptions& options() const { return options_; }

 private:
  // grads/copies: step_from's (in group order), or null for .grad() and no copies.
  void update(const std::vector<torch::Tensor>* grads, const torch::Tensor& grad_scale,
              const std::vector<torch::Tensor>* copies);
  bool update_group_fused(ParamGroup& group, size_t first_index, const std::vector<torch::Tensor>* grads,
                          const torch::Tensor& grad_scale, const std::vector<torch::Tensor>* copies);

  AdamOptions options_;
};

}  // namespace deepspeed
