// DeepSpeed's checkpoint layout for models with MoE layers (docs/moe.md, "Checkpoints"): the
// experts are not in the model states but one file per expert,
// layer_<L>_expert_<E>_mp_rank_XX_model_states.pt, with the expert's global number E in its
// keys; each expert-parallel rank's optimizer goes to expp_rank_<r>_mp_rank_XX_optim_states.pt
// (below ZeRO all of it; under ZeRO the experts' groups, whole, the rest in DeepSpeed's ZeRO
// files). Because experts are saved by their global number,
// a checkpoint loads with any expert-parallel size that divides the number of experts; the
// optimizer files also carry each tensor's name (ours, beside DeepSpeed's keys), so that the
// optimizer state follows its expert to whichever rank holds it now.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <ATen/core/ivalue.h>
#include <torch/nn/module.h>

#include <deepspeed/groups.h>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_writer.h"

namespace deepspeed {

// One MoE layer of a module and the experts this rank holds of it.
struct MoeLayerPlacement {
  std::string experts_prefix;  // "<layer path>.deepspeed_moe.experts.deepspeed_experts."
  int64_t num_experts = 0;
  int64_t num_local_experts = 0;
  int64_t ep_size = 1;
  int64_t ep_rank = 0;   // this rank's place in the layer's expert-parallel group
  int64_t edp_rank = 0;  // ... and in its expert-data-parallel group (0 writes the files)
};

// The module's MoE layers in module order (DeepSpeed's moe_layer_id); their expert groups
// must exist (initialize made them).
std::vector<MoeLayerPlacement> moe_layer_placements(const torch::nn::Module& module, Groups& groups);

// The layer with the largest expert-parallel size: its ranks name the optimizer files
// (DeepSpeed's _get_max_expert_size_name). `layers` must not be empty.
const MoeLayerPlacement& largest_expert_parallel_layer(const std::vector<MoeLayerPlacement>& layers);

// A parameter name with its local expert number replaced by the global one (names outside the
// experts come back unchanged).
std::string global_expert_name(const std::string& name, const std::vector<MoeLayerPlacement>& layers);

// The module state without the experts' entries (what the model-states file holds).
c10::impl::GenericDict without_experts(const c10::impl::GenericDict& module_state);

// This rank's expert files: one per expert it holds, where it is its expert-data-parallel
// group's first rank.
std::vector<checkpoint::FileToWrite> expert_files(const torch::nn::Module& module,
                                                  const std::vector<MoeLayerPlacement>& layers, int64_t mp_rank);

// The expp_rank optimizer file: {"optimizer": state} and, per group, each tensor's global name
// and element count ("ds_cpp_parameter_names", "ds_cpp_parameter_numels").
checkpoint::FileToWrite expert_optimizer_file(const c10::IValue& optimizer_state,
                                              const std::vector<std::vector<std::string>>& names,
                                              const std::vector<std::vector<int64_t>>& numels, int64_t ep_rank,
                                              int64_t mp_rank);

// Adds this rank's experts, read from their files and renamed to the local numbers, to a module
// state read from the model-states file. Throws CheckpointError naming a missing file or key.
void add_local_experts(c10::impl::GenericDict& module_state, const checkpoint::CheckpointReader& reader,
                       const std::vector<MoeLayerPlacement>& layers, int64_t mp_rank);

// The optimizer state for this rank (under ZeRO: of its experts): its expert-parallel rank's file when that was
// saved with the same tensors, else assembled by name from every saved rank's file (another
// expert-parallel size). `names`: this rank's optimizer tensors, per group, as global names.
c10::IValue expert_optimizer_state(const checkpoint::CheckpointReader& reader,
                                   const std::vector<std::vector<std::string>>& names, int64_t ep_rank,
                                   int64_t mp_rank);

}  // namespace deepspeed
