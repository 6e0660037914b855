// Checkpoints across tensor-parallel degrees (docs/tensor_parallel.md, "Checkpoints"). Each
// tensor rank writes its own mp_rank_XX_model_states.pt (and, under ZeRO-1/2, its data ranks'
// zero_pp_rank_D_mp_rank_XX_optim_states.pt), holding its parts of the split parameters; the
// model-states file also records which parameters were split and how
// ("ds_cpp_tensor_parallel"). A run with another tensor-parallel degree reads every saved
// tensor rank's files, puts each split parameter back together along its parallel dimension
// (fused q/k/v sub-parameters each on their own) and cuts it again for its own degree and rank:
// the weights, the stage-0 optimizer state and ZeRO-1/2's fp32 masters and moments alike.
//
// What comes out is this tensor rank's checkpoint as a run with the new degree would have
// written it, with ZeRO's optimizer state as one data-parallel rank holding it all, so the
// engine's loaders (and ZeRO's resharding for another data-parallel size) take it as it is.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>
#include <torch/nn/module.h>

#include <deepspeed/tensor_parallel.h>

namespace deepspeed {

// The model-states entry "ds_cpp_tensor_parallel": {"split": {name: {"dim", "sub_sizes"}}}.
c10::IValue tensor_parallel_entry(const std::vector<tensor_parallel::SplitParameter>& splits);

struct TensorParallelCheckpointLoad {
  // The saved checkpoint: a file of its tag folder by name, whether it has one, the folder (errors).
  std::function<c10::impl::GenericDict(const std::string&)> read;
  std::function<bool(const std::string&)> has;
  std::string dir;
  int64_t saved_tp = 1, saved_dp = 1;
  int saved_zero_stage = 0;
  bool load_optimizer_states = true;
  // This run: its tensor-parallel degree and rank, its split parameters, its module (for the
  // shapes), and (stage 0) the optimizer's tensors by module name, per group.
  int64_t tp = 1, tp_rank = 0;
  std::vector<tensor_parallel::SplitParameter> splits;
  const torch::nn::Module* module = nullptr;
  std::vector<std::vector<std::string>> optimizer_names;
};

struct ResplitCheckpoint {
  c10::impl::GenericDict model_states{c10::StringType::get(), c10::AnyType::get()};
  std::string file;                                 // the saved files it comes from, for messages
  std::vector<c10::impl::GenericDict> zero_files;   // ZeRO-1/2: one data-parallel rank's file
  std::vector<std::string> zero_names;
};

// This tensor rank's model states (and ZeRO file) from a checkpoint saved with `saved_tp`
// tensor-parallel ranks. Throws CheckpointError naming the parameter and the file when a saved
// tensor does not fit this model (another shape once put together and cut again), when a split
// size does not divide, and for what it cannot resplit (ZeRO-3, a checkpoint without the split
// record).
ResplitCheckpoint resplit_tensor_parallel_checkpoint(const TensorParallelCheckpointLoad& load);

}  // namespace deepspeed
