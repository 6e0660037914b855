#include "runtime/activation_checkpointing/saved_inputs.h"

#include <torch/cuda.h>

namespace deepspeed::checkpointing::detail {
namespace {

bool is_activation(const torch::Tensor& t, const Settings& s) {
  return t.defined() && t.is_floating_point() && t.numel() >= s.mp_size;
}

torch::TensorOptions host_options(const torch::Tensor& like) {
  auto o = torch::TensorOptions().dtype(like.scalar_type()).device(torch::kCPU);
  // Page-locked, so that the copies to and from the device can be asynchronous.
  return like.is_cuda() ? o.pinned_memory(true) : o;
}

// Where a kept copy of `like` goes: its own device, or the host under cpu_checkpointing.
torch::TensorOptions keep_options(const torch::Tensor& like, const Settings& s) {
  if (s.config.cpu_checkpointing) return host_options(like);
  return torch::TensorOptions().dtype(like.scalar_type()).device(like.device());
}

}  // namespace

SavedInput save_input(const torch::Tensor& input, std::size_t index, const Settings& s) {
  SavedInput saved;
  if (!input.defined()) return saved;
  saved.shape = input.sizes().vec();
  saved.device = input.device();
  saved.requires_grad = input.requires_grad();
  const auto data = input.detach();
  if (!is_activation(input, s)) {
    saved.kept = data;
  } else if (s.config.partition_activations) {
    auto flat = data.contiguous().view(-1);
    const int64_t part = (flat.numel() + s.mp_size - 1) / s.mp_size;
    if (part * s.mp_size != flat.numel()) {
      flat = torch::cat({flat, torch::zeros({part * s.mp_size - flat.numel()}, flat.options())});
    }
    const auto mine = flat.narrow(0, s.mp_rank * part, part);
    if (s.config.contiguous_memory_optimization) {
      saved.kept = contiguous_slot(index, part, keep_options(input, s), *s.config.number_checkpoints);
    } else {
      saved.kept = torch::empty({part}, keep_options(input, s));
    }
    saved.kept.copy_(mine, /*non_blocking=*/true);
    saved.partitioned = true;
  } else if (s.config.cpu_checkpointing && !input.device().is_cpu()) {
    saved.kept = torch::empty(saved.shape, host_options(input));
    saved.kept.copy_(data, /*non_blocking=*/true);
  } else {
    saved.kept = data;
  }
  if (input.is_floating_point()) count_saved(saved.kept, +1);
  saved.counted = input.is_floating_point();
  return saved;
}

torch::Tensor restore_input(const SavedInput& saved, const Settings& s) {
  if (!saved.kept.defined()) return {};
  torch::Tensor whole;
  if (saved.partitioned) {
    const int64_t part = saved.kept.numel();
    auto flat = torch::empty({part * s.mp_size}, saved.kept.options().device(saved.device).pinned_memory(false));
    flat.narrow(0, s.mp_rank * part, part).copy_(saved.kept, /*non_blocking=*/true);
    if (s.mp_size > 1) {
      auto& group = *s.partition_group;
      // Gloo in LibTorch 1.13 has no bfloat16: such slices travel as fp32 (exact).
      auto wire = group.supports(flat.scalar_type()) ? flat : flat.to(torch::kFloat32);
      group.wait(group.all_gather_async(wire), "all_gather (activation checkpointing)");
      if (!wire.is_same(flat)) flat.copy_(wire);
    }
    int64_t numel = 1;
    for (auto d : saved.shape) numel *= d;
    whole = flat.narrow(0, 0, numel).view(saved.shape);
  } else if (saved.kept.device() != saved.device) {
    whole = saved.kept.to(saved.device, /*non_blocking=*/true);
  } else {
    whole = saved.kept;
  }
  whole = whole.detach();
  whole.set_requires_grad(saved.requires_grad);
  return whole;
}

void release_input(SavedInput& saved) {
  if (saved.counted) count_saved(saved.kept, -1);
  saved.kept = torch::Tensor();
}

}  // namespace deepspeed::checkpointing::detail
