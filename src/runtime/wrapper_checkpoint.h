// What the optimizer wrappers put into checkpoints, in DeepSpeed's layout (docs/checkpointing.md,
// "What is saved"), and
// how they take it back; engine_checkpoint.cpp decides which files these go into.
//
// Stage 0 with fp16/bf16 (FP16_Optimizer's state_dict, under "optimizer" in the model
// states): the loss-scale keys, the base optimizer's state ("optimizer_state_dict"), the fp32
// masters flattened per group ("fp32_groups_flat") and "clip_grad".
// ZeRO 1/2 (each rank's [bf16_]zero_pp_rank_<r>_mp_rank_00_optim_states.pt): under
// "optimizer_state_dict", "loss_scaler", "dynamic_loss_scale", "overflow", "clip_grad",
// "base_optimizer_state", "single_partition_of_fp32_groups", "zero_stage", "partition_count",
// "group_paddings", and ours, "ds_cpp_layout" (the parameters' sizes and groups and the
// bucket size), from which any world size rebuilds the partitions (partition_resharding.h).
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>

#include <deepspeed/config.h>
#include <deepspeed/optimizer.h>

#include "runtime/data_parallel_optimizer.h"
#include "runtime/zero/zero_optimizer.h"

namespace deepspeed {

c10::IValue stage0_optimizer_state(const DataParallelOptimizer& wrapper, const Optimizer& optimizer, double clip_grad);
// Accepts both the FP16_Optimizer dict and a plain optimizer state dict (a checkpoint saved
// in fp32 loads into an fp16 run, and back). Errors name `file`.
void load_stage0_optimizer_state(DataParallelOptimizer& wrapper, Optimizer& optimizer, const c10::IValue& state,
                                 const std::string& file);

// `names`: the module's name of each of wrapper.parameters() (for ds_to_fp32).
c10::impl::GenericDict zero_optim_states(const ZeroOptimizer& wrapper, const Optimizer& optimizer,
                                         const DeepSpeedConfig& config, const std::vector<std::string>& names);
// `files`: every saved rank's optim-states dict, in rank order, and their names for errors.
// Reshards to this run's world size. Collective (the parameters are all-gathered).
void load_zero_optim_states(ZeroOptimizer& wrapper, Optimizer& optimizer,
                            const std::vector<c10::impl::GenericDict>& files, const std::vector<std::string>& names,
                            bool load_optimizer_states);

}  // namespace deepspeed
