// How a checkpoint keeps one of its inputs until its backward, as the settings say:
//   - as it is (an alias of the input: the default);
//   - partition_activations: only this rank's 1/mp_size slice of it (flattened, padded to a
//     multiple of mp_size), gathered again over the model-parallel group in backward;
//   - cpu_checkpointing: in host memory (page-locked where there is CUDA), copied back to the
//     input's device in backward; with partitioning, the slice is what goes to the host;
//   - contiguous_memory_optimization: the slice is copied into the argument's preallocated
//     buffer instead of a tensor of its own.
// Inputs that are not floating point, or have fewer elements than mp_size, are kept as they are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "runtime/activation_checkpointing/settings.h"

namespace deepspeed::checkpointing::detail {

struct SavedInput {
  torch::Tensor kept;
  bool partitioned = false;
  std::vector<int64_t> shape;
  torch::Device device = torch::kCPU;
  bool requires_grad = false;
  bool counted = false;  // in saved_bytes(): floating-point inputs (the activations) only
};

// `index` counts this checkpoint's floating-point inputs (the contiguous buffer it goes to).
SavedInput save_input(const torch::Tensor& input, std::size_t index, const Settings& s);
// The input again, on its device, detached, requiring grad as it did.
torch::Tensor restore_input(const SavedInput& saved, const Settings& s);
// Drops what `saved` holds and uncounts it.
void release_input(SavedInput& saved);

}  // namespace deepspeed::checkpointing::detail
