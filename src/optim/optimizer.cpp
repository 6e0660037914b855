// The parts of Optimizer that do not depend on the algorithm, and the engine's view of the
// hyper-parameters (engine.get_lr() / engine.get_mom()).
#include "deepspeed/optimizer.h"

#include <torch/utils.h>

namespace deepspeed {

void Optimizer::zero_grad() {
  // As `p.grad = None` (DeepSpeed's set_grad_none / torch's set_to_none): an undefined
  // gradient both frees memory and makes step() skip the tensor.
  for (auto& group : groups_) {
    for (auto& p : group.params) {
      if (p.defined() && p.grad().defined()) p.mutable_grad() = torch::Tensor();
    }
  }
}

void Optimizer::step_from(const std::vector<torch::Tensor>& grads, double grad_scale,
                          const std::vector<torch::Tensor>& copies) {
  step_from(grads, torch::scalar_tensor(grad_scale, torch::kFloat64), copies);
}

void Optimizer::step_from(const std::vector<torch::Tensor>& grads, const torch::Tensor& grad_scale,
                          const std::vector<torch::Tensor>& copies) {
  torch::NoGradGuard no_grad;
  // A factor of 1 known on the host is skipped; one on the GPU is applied (reading it would wait).
  const bool scale = !(grad_scale.is_cpu() && grad_scale.item<double>() == 1.0);
  size_t i = 0;
  for (auto& group : groups_) {
    for (auto& p : group.params) {
      const torch::Tensor& g = grads.at(i++);
      if (!g.defined()) {
        p.mutable_grad().reset();
        continue;
      }
      if (!g.is_same(p.grad())) {
        if (!p.grad().defined()) p.mutable_grad() = torch::empty_like(p);
        p.mutable_grad().copy_(g);
      }
      if (scale) p.mutable_grad().mul_(grad_scale);
    }
  }
  step();
  if (copies.empty()) return;
  i = 0;
  for (auto& group : groups_) {
    for (auto& p : group.params) {
      const torch::Tensor& c = copies.at(i++);
      if (c.defined() && !c.is_same(p)) c.detach().copy_(p);
    }
  }
}

std::vector<double> get_lr(const Optimizer& optimizer) {
  std::vector<double> lrs;
  for (const auto& group : optimizer.param_groups()) lrs.push_back(group.lr);
  return lrs;
}

std::vector<GroupMomentum> get_mom(const Optimizer& optimizer) {
  std::vector<GroupMomentum> moms;
  for (const auto& group : optimizer.param_groups()) {
    GroupMomentum m;
    if (optimizer.uses_momentum()) {
      m.values[0] = group.momentum;
    } else if (optimizer.has_betas()) {
      m.is_pair = true;
      m.values = group.betas;
    }
    moms.push_back(m);
  }
  return moms;
}

}  // namespace deepspeed
