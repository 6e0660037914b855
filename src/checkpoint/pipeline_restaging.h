// A pipeline checkpoint's optimizer state, cut for another partition of the layers (another
// number of stages). Each stage's model-states file holds the optimizer state of that stage's
// parameters; parameters are named as PipelineModule names them ("<layer>.<name>",
// "tied_modules.<key>.<name>"), the same on any number of stages, so the state of each
// parameter can be found by name and put where the loading stage's optimizer expects it.
//
// Handles both forms of DeepSpeed's stage-0 "optimizer" entry: the optimizer's own state dict
// (fp32) and FP16_Optimizer's dict around it (fp16/bf16: "optimizer_state_dict" and the fp32
// masters flattened per group in "fp32_groups_flat"); the loss-scale keys come from the first
// saved stage. ZeRO-1's partitioned files: restage_zero_state below.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>

namespace deepspeed::checkpoint {

// One optimizer's parameters, per param group: names and element counts, in optimizer order.
struct PipeParameterLayout {
  std::vector<std::vector<std::string>> names;
  std::vector<std::vector<int64_t>> numels;
};

// The layout as the model-states file keeps it (ds_cpp_pipe_layout's "param_names" and
// "param_numels"), and back.
c10::IValue to_ivalue(const PipeParameterLayout& layout);
PipeParameterLayout pipe_parameter_layout(const c10::IValue& value, const std::string& where);

struct SavedStageOptimizer {
  PipeParameterLayout layout;
  c10::IValue optimizer;  // the stage's "optimizer" entry
  std::string file;       // for errors
};

// The "optimizer" entry for a stage whose optimizer holds `wanted`, from the saved stages'.
// Group g's hyper-parameters come from the first saved stage's group g. Throws CheckpointError
// naming the parameter that no saved stage has, or a group count that does not match.
c10::IValue restage_optimizer_state(const std::vector<SavedStageOptimizer>& saved, const PipeParameterLayout& wanted);

// ZeRO stage 1/2 (DeepSpeed's zero_pp_rank_D_mp_rank_XX_optim_states.pt): one saved stage's
// param_shapes (from its model-states file) and every data-parallel rank's optim-states file.
struct SavedStageZeroState {
  c10::IValue param_shapes;
  std::vector<c10::impl::GenericDict> optim_states;  // each file's whole dict, in rank order
  std::vector<std::string> files;                    // for errors
};

// The ZeRO state of the parameters `wanted` (names, in the order the result lists them), put
// back together from the saved stages' partitions: what one data-parallel rank would have
// saved for a stage holding exactly these parameters (partition_count 1), and the
// param_shapes that describe it. The ZeRO loader then cuts it for this run's data-parallel
// size like any checkpoint. Each parameter keeps the optimizer group it had when saved; group
// hyper-parameters, loss scaler and the rest come from the first saved stage's rank 0 file.
// Throws CheckpointError naming a parameter no saved stage has.
struct RestagedZeroState {
  c10::IValue param_shapes;
  c10::impl::GenericDict optim_states;
};
RestagedZeroState restage_zero_state(const std::vector<SavedStageZeroState>& saved,
                                     const std::vector<std::string>& wanted, bool with_optimizer_state);

}  // namespace deepspeed::checkpoint
