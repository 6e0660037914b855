// The parameters of Mixture-of-Experts layers (docs/moe.md), which the engine treats apart:
// each rank holds only its experts, so their gradients are averaged over the
// expert-data-parallel group (the ranks that hold the same experts) but divided by the whole
// data-parallel size, as DeepSpeed does (an expert's gradient already sums the tokens of its
// expert-parallel group), and their share of the gradient norm is summed over the
// expert-parallel group (the ranks that hold the other experts).
#pragma once

#include <memory>
#include <vector>

#include <torch/types.h>

#include <deepspeed/comm.h>

namespace deepspeed {

struct ExpertParameterGroup {
  std::vector<torch::Tensor> parameters;
  std::shared_ptr<comm::ProcessGroup> expert_parallel;
  std::shared_ptr<comm::ProcessGroup> expert_data_parallel;
};
using ExpertParameters = std::vector<ExpertParameterGroup>;

}  // namespace deepspeed
