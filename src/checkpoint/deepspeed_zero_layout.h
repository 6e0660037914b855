// How DeepSpeed's ZeRO optimizers cut an optimizer group among N ranks, as their checkpoint
// files hold the pieces (docs/checkpointing.md), whatever layout the run itself used:
//
// Stages 1 and 2: the group's parameters flattened one after the other, in the group's order
// (param_shapes'), padded with zeros to a multiple of 2N; rank r owns the r-th of N equal
// slices. Its file keeps the slice without its padding (single_partition_of_fp32_groups) and
// the optimizer state with it.
// Stage 3: every parameter is cut on its own: padded to a multiple of N, rank r owns its r-th
// slice of ceil(numel / N) elements; a rank's flat group (fp32_flat_groups) is its slices of
// the group's parameters, one after the other.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Dict.h>
#include <torch/types.h>

namespace deepspeed::checkpoint {

// Stage 1/2: the size of every rank's slice of a group of `numel` elements.
int64_t zero12_partition_size(int64_t numel, int64_t world);
// Stage 1/2: the zeros that end rank `rank`'s slice (DeepSpeed's group_paddings entry).
int64_t zero12_padding(int64_t numel, int64_t world, int64_t rank);
// Stage 1/2: rank `rank`'s slice of `flat` (the group's parameters, one after the other),
// with its padding.
torch::Tensor zero12_partition(const torch::Tensor& flat, int64_t world, int64_t rank);
// Stage 1/2: the group's `numel` elements from every rank's slice (with or without padding).
// Throws CheckpointError naming `where` when the slices hold fewer.
torch::Tensor zero12_flat(const std::vector<torch::Tensor>& slices, int64_t numel, const std::string& where);

// Stage 3: the size of every rank's slice of one parameter of `numel` elements.
int64_t zero3_partition_numel(int64_t numel, int64_t world);
// Stage 3: rank `rank`'s flat group from the group's parameters (each flattened).
torch::Tensor zero3_partition(const std::vector<torch::Tensor>& params, int64_t world, int64_t rank);
// Stage 3: each parameter (flattened, `numels[i]` elements) from every rank's flat group.
// Throws CheckpointError naming `where` when a flat group has the wrong size.
std::vector<torch::Tensor> zero3_params(const std::vector<torch::Tensor>& flat_groups, const std::vector<int64_t>& numels,
                                        const std::string& where);

// One optimizer group of a ZeRO checkpoint in DeepSpeed's layout, put back together from
// every rank's file: its parameters in param_shapes' order, each flattened.
struct ZeroGroupContents {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<torch::Tensor> masters;                                // fp32
  std::map<std::string, std::vector<torch::Tensor>> per_element;     // optimizer state (exp_avg, ...)
  std::map<std::string, c10::IValue> scalars;                        // optimizer state of the group (step)
  bool has_optimizer_state = false;                                  // the group has stepped
};

// `optimizer_state_dicts`: every rank's optimizer_state_dict, in rank order (`files` names
// them); `param_shapes`: the model states' entry. Stage 1/2 and 3 as saved (zero_stage);
// `with_optimizer_state` false reads only the masters. CheckpointError naming the file and
// entry on anything inconsistent.
std::vector<ZeroGroupContents> read_zero_groups(const std::vector<c10::impl::GenericDict>& optimizer_state_dicts,
                                                const std::vector<std::string>& files, const c10::IValue& param_shapes,
                                                bool with_optimizer_state);

// param_shapes: per group, name -> shape (a torch.Size in DeepSpeed's files).
std::vector<std::vector<std::pair<std::string, std::vector<int64_t>>>> read_param_shapes(const c10::IValue& value,
                                                                                          const std::string& file);

}  // namespace deepspeed::checkpoint
