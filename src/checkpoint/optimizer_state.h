// An optimizer's state in torch.optim's state_dict layout, so Python reads it as it reads
// any optimizer's:
//   {"state": {0: {"step": t, "exp_avg": t, "exp_avg_sq": t}, 1: {...}},
//    "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08,
//                      "weight_decay": 0.0, ..., "params": [0, 1]}]}
// Tensor indices run over all groups in order, as torch numbers them.
#pragma once

#include <string>

#include <ATen/core/ivalue.h>

#include <deepspeed/optimizer.h>

namespace deepspeed::checkpoint {

c10::IValue optimizer_state_dict(const Optimizer& optimizer);

// Restores the hyper-parameters of every group and the per-tensor state, moving state
// tensors to their parameter's device. The group layout (number of groups and of tensors
// in each) must match; errors name `file`.
void load_optimizer_state(Optimizer& optimizer, const c10::IValue& state, const std::string& file);

}  // namespace deepspeed::checkpoint
