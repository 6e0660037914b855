// What the optimizer wrappers put into checkpoints, in DeepSpeed's layout (docs/checkpointing.md,
// "What is saved"), and
// how they take it back; engine_checkpoint.cpp decides which files these go into.
//
// Stage 0 with fp16/bf16 (FP16_Optimizer's state_dict, under "optimizer" in the model
// states): the loss-scale keys, the base optimizer's state ("optimizer_state_dict"), the fp32
// masters flattened per group ("fp32_groups_flat") and "clip_grad".
// ZeRO (each rank's [bf16_]zero_pp_rank_<r>_mp_rank_00_optim_states.pt), DeepSpeed's
// stage_1_and_2.py / stage3.py state_dict under "optimizer_state_dict": the partitions cut
// as DeepSpeed cuts them (checkpoint/deepspeed_zero_layout.h), not as this run's buckets do,
// so that DeepSpeed's zero_to_fp32.py and loader read them; the ranks exchange their
// partitions to write them, and read every rank's file to load them on any world size.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>

#include <deepspeed/config.h>
#include <deepspeed/optimizer.h>

#include <deepspeed/comm.h>
#include <torch/nn/module.h>

#include "runtime/data_parallel_optimizer.h"
#include "runtime/zero/zero_optimizer.h"

namespace deepspeed {

c10::IValue stage0_optimizer_state(const DataParallelOptimizer& wrapper, const Optimizer& optimizer, double clip_grad);
// Accepts both the FP16_Optimizer dict and a plain optimizer state dict (a checkpoint saved
// in fp32 loads into an fp16 run, and back). Errors name `file`.
void load_stage0_optimizer_state(DataParallelOptimizer& wrapper, Optimizer& optimizer, const c10::IValue& state,
                                 const std::string& file);

// The ZeRO optimizer's parameters as DeepSpeed lists them: each one's module name, and each
// optimizer group's parameters in the module's order (param_shapes' order).
struct ZeroParameterOrder {
  std::vector<std::string> names;            // per wrapper.parameters()
  std::vector<std::vector<int64_t>> groups;  // per group: indices into wrapper.parameters()
};
ZeroParameterOrder zero_parameter_order(const ZeroOptimizer& wrapper, const torch::nn::Module& module);

// This rank's optim-states dict. Collective over `group` (the data-parallel group), whose
// collectives take tensors on `device`.
c10::impl::GenericDict zero_optim_states(const ZeroOptimizer& wrapper, const Optimizer& optimizer,
                                         const DeepSpeedConfig& config, const ZeroParameterOrder& order,
                                         comm::ProcessGroup& group, torch::Device device);
// `files`: every saved rank's optim-states dict, in rank order, and their names for errors;
// `param_shapes`: the model states' entry (what DeepSpeed's layout is cut by). Also reads the
// layout written by deepspeed-cpp before it wrote DeepSpeed's (ds_cpp_layout). Reshards to
// this run's world size. Collective (the parameters are all-gathered).
void load_zero_optim_states(ZeroOptimizer& wrapper, Optimizer& optimizer,
                            const std::vector<c10::impl::GenericDict>& files, const std::vector<std::string>& names,
                            const c10::IValue& param_shapes, const ZeroParameterOrder& order,
                            bool load_optimizer_states);

// DeepSpeed's loss scaler object (LossScaler or DynamicLossScaler) for `scaler`.
c10::IValue loss_scaler_object(const LossScaler& scaler);

}  // namespace deepspeed
