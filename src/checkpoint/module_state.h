// A module's state dict (parameters and buffers by dotted name, as torch's state_dict())
// in and out of a checkpoint.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/ivalue.h>
#include <torch/nn/module.h>

namespace deepspeed::checkpoint {

// {"fc1.weight": tensor, ..., "bn.running_mean": tensor, ...}: parameters, then buffers.
c10::impl::GenericDict module_state_dict(const torch::nn::Module& module);
std::vector<std::string> buffer_names(const torch::nn::Module& module);

// Copies the saved tensors into the module's own (keeping their device and dtype).
// strict: a missing or unexpected key is an error (torch's load_state_dict message);
// a shape mismatch is always an error. Errors name `file`.
void load_module_state(torch::nn::Module& module, const c10::impl::GenericDict& state, bool strict,
                       const std::string& file);

}  // namespace deepspeed::checkpoint
