// The random-number generators a training step draws from (dropout, random init of new
// layers, data augmentation): torch's default CPU generator and, on a GPU, the device's.
// Saved per rank, so that a resumed run draws the same numbers as an uninterrupted one.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/types.h>

namespace deepspeed::checkpoint {

struct RngState {
  torch::Tensor cpu;   // uint8, the CPU generator's get_state()
  torch::Tensor cuda;  // uint8, the generator of `device` when it is a GPU; undefined otherwise
};

RngState capture_rng_state(torch::Device device);
void restore_rng_state(const RngState& state, torch::Device device);

// {"cpu": tensor, "cuda": tensor or None}
c10::IValue to_ivalue(const RngState& state);
RngState rng_state_from(const c10::IValue& value, const std::string& file);

}  // namespace deepspeed::checkpoint
