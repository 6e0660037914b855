// The parts of Optimizer that do not depend on the algorithm, and the engine's view of the
// hyper-parameters (engine.get_lr() / engine.get_mom()).
#include "deepspeed/optimizer.h"

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
