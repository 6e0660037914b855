// One fp32 state dict from a checkpoint, whatever wrote it (ds_to_fp32, and DeepSpeed's
// get_fp32_state_dict_from_zero_checkpoint): floating-point tensors as fp32, others
// (integer buffers such as BatchNorm's num_batches_tracked) as they were.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "checkpoint/checkpoint_reader.h"

namespace deepspeed::checkpoint {

// Stage 0 reads the module of mp_rank_00_model_states.pt. ZeRO stages 1-2 keep the fp32
// masters of the trainable parameters in the per-rank optimizer shards: those are
// reassembled and take the place of the module's (possibly bf16/fp16) values; buffers and
// frozen parameters come from the module (stage 3: from every rank's frozen_param_fragments).
std::vector<std::pair<std::string, torch::Tensor>> fp32_state_dict(const CheckpointReader& reader);

}  // namespace deepspeed::checkpoint
