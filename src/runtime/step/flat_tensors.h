// Where the engine packs a list of tensors into one flat buffer (checkpoints' fp32 groups and
// ZeRO pieces), it uses the utils op (DeepSpeed's UtilsBuilder flatten) when the build has it
// (DS_BUILD_UTILS), else ATen's cat: the same elements in the same order either way.
#pragma once

#include <vector>

#include <torch/torch.h>

#include <deepspeed/flatten.h>

namespace deepspeed {

// `parts`: non-empty, one dtype and device.
inline torch::Tensor flatten_tensors(const std::vector<torch::Tensor>& parts) {
  if (ops::utils_op_built()) return ops::flatten(parts);
  std::vector<torch::Tensor> flat;
  flat.reserve(parts.size());
  for (const auto& p : parts) flat.push_back(p.reshape(-1));
  return torch::cat(flat);
}

}  // namespace deepspeed
