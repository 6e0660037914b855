// The generators a recompute must see in the state its forward saw: the CPU's default
// generator and the device's (CUDA's current device; the CPU's where there is no CUDA), and the
// RNG tracker's named states.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include <deepspeed/activation_checkpointing.h>

namespace deepspeed::checkpointing::detail {

// The device generator: CUDA's default generator of the current device, or the CPU's.
torch::Tensor device_rng_state();
void set_device_rng_state(const torch::Tensor& state);
void device_manual_seed(uint64_t seed);

struct RngSnapshot {
  torch::Tensor cpu;
  torch::Tensor device;
  CudaRNGStatesTracker::States tracker;
};
RngSnapshot capture_rng();
void restore_rng(const RngSnapshot& snapshot);

}  // namespace deepspeed::checkpointing::detail
