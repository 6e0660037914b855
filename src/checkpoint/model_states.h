// The model-states dict (mp_rank_00_model_states.pt), with DeepSpeed's keys
// (docs/checkpointing.md, "What is saved"):
//   module, buffer_names, optimizer, param_shapes, frozen_param_shapes, shared_params,
//   frozen_param_fragments, lr_scheduler, data_sampler, random_ltd,
//   sparse_tensor_module_names, skipped_steps, global_steps, global_samples,
//   dp_world_size, mp_world_size, checkpoint_parallel_dimensions, ds_config, ds_version,
// plus ours: micro_steps, rng_states (one entry per rank), ds_cpp_data_position (the data
// loader's position; DeepSpeed's data_sampler is None), ds_cpp_pipe_layout (a pipeline's
// partition and parameter names, written by the pipeline engine), then the client state merged
// at top level. The entries are built by the engine; this file knows the keys, the merge
// and which keys are DeepSpeed's when the client state is read back.
#pragma once

#include <string>

#include <ATen/core/ivalue.h>

#include <deepspeed/checkpoint.h>

namespace deepspeed::checkpoint {

struct ModelStates {
  // None where DeepSpeed writes None: optimizer under ZeRO; param_shapes and shared_params at
  // stage 0; frozen_param_shapes and frozen_param_fragments below stage 2.
  c10::IValue module, buffer_names, optimizer, param_shapes, shared_params, frozen_param_shapes,
      frozen_param_fragments, lr_scheduler, data_position, rng_states, ds_config;
  int64_t global_steps = 0, global_samples = 0, micro_steps = 0, skipped_steps = 0;
  int64_t dp_world_size = 1, mp_world_size = 1;
  // checkpoint_parallel_dimensions: pipeline stages, and tensor-parallel ranks (0: mp_world_size).
  int64_t pp_degree = 1, tp_degree = 0;
  std::string ds_version;
};

// The dict to pickle. A client key that is one of the engine's own (every key listed
// above) is a CheckpointError: in DeepSpeed it would silently replace the engine's value.
c10::impl::GenericDict make_model_states(const ModelStates& states, const ClientState& client_state);

// The client state on load: every top-level key that is not one of the engine's own.
// DeepSpeed also returns its metadata keys (ds_config, global_samples, param_shapes, ...);
// we leave them out, so that the tutorial's loop, which saves the client state it loaded,
// neither trips over them nor writes back stale values (DeepSpeed writes back a stale
// global_samples that way). docs/checkpointing.md says so.
ClientState client_state_from(const c10::impl::GenericDict& states, const std::string& file);

}  // namespace deepspeed::checkpoint
