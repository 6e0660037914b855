// LAMB as DeepSpeed's FusedLamb runs it (csrc/lamb/fused_lamb_cuda_kernel.cu).
//
// Per tensor, t the step: m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g² (no bias correction
// inside the moments); update = m / (sqrt(v) + eps) + wd·p (eps_inside_sqrt: sqrt(v + eps));
// trust ratio c = ||p|| / ||update|| clamped to [min_coeff, max_coeff], 1 when either norm
// is 0; step_size = lr·sqrt(1-β2^t)/(1-β1^t) (lr without bias_correction);
// p -= step_size · c · update. Defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0,
// max_coeff 10, min_coeff 0.01.
// On the GPU (fp32 CUDA tensors), a whole group is updated by the fused_lamb op
// (ops/cuda/fused_lamb: multi-tensor, norms on the device, no host synchronisation).
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "deepspeed/optimizer.h"

namespace deepspeed {

class Lamb : public Optimizer {
 public:
  Lamb(std::vector<ParamGroup> groups, bool eps_inside_sqrt)
      : Optimizer(std::move(groups)), eps_inside_sqrt_(eps_inside_sqrt) {}

  static std::unique_ptr<Optimizer> create(const nlohmann::json& params,
                                           std::vector<ParamGroup> groups);

  void step() override;
  using Optimizer::step_from;
  void step_from(const std::vector<torch::Tensor>& grads, const torch::Tensor& grad_scale,
                 const std::vector<torch::Tensor>& copies) override;
  std::string name() const override { return "Lamb"; }
  std::string class_name() const override { return "FusedLamb"; }
  // The trust ratios of the last step, one per updated tensor (FusedLamb.get_lamb_coeffs()).
  // After a fused GPU step, asking for them waits for the GPU.
  const std::vector<double>& lamb_coeffs() const;

 private:
  void update(const std::vector<torch::Tensor>* grads, const torch::Tensor& grad_scale,
              const std::vector<torch::Tensor>* copies);
  bool update_group_fused(ParamGroup& group, size_t first_index, const std::vector<torch::Tensor>* grads,
                          const torch::Tensor& grad_scale, const std::vector<torch::Tensor>* copies);

  bool eps_inside_sqrt_;
  mutable std::vector<double> lamb_coeffs_;
  mutable std::vector<torch::Tensor> pending_coeffs_;  // device results not yet read
};

}  // namespace deepspeed
