// The model-states dict (mp_rank_00_model_states.pt), with DeepSpeed's keys (spec §6.1):
//   module, buffer_names, optimizer, param_shapes, frozen_param_shapes, shared_params,
//   frozen_param_fragments, lr_scheduler, data_sampler, random_ltd,
//   sparse_tensor_module_names, skipped_steps, global_steps, global_samples,
//   dp_world_size, mp_world_size, checkpoint_parallel_dimensions, ds_config, ds_version,
// plus ours: micro_steps, rng_states (one entry per rank), then the client state merged
// at top level. The entries are built by the engine; this file knows the keys, the merge
// and which keys are DeepSpeed's when the client state is read back.
#pragma once

#include <string>

#include <ATen/core/ivalue.h>

#include <deepspeed/checkpoint.h>

namespace deepspeed::checkpoint {

struct ModelStates {
  c10::IValue module, buffer_names, optimizer, param_shapes, lr_scheduler, data_sampler, rng_states, ds_config;
  int64_t global_steps = 0, global_samples = 0, micro_steps = 0, skipped_steps = 0;
  int64_t dp_world_size = 1, mp_world_size = 1;
  std::string ds_version;
};

// The dict to pickle. A client key the engine reads back on load (module, optimizer,
// global_steps, ...) would silently break the resume, so it is a CheckpointError; other
// client keys override the engine's, as in DeepSpeed.
c10::impl::GenericDict make_model_states(const ModelStates& states, const ClientState& client_state);

// DeepSpeed's client_state on load: every top-level key except the engine's own ones
// (`module`, counters, ...; `optimizer` and `lr_scheduler` only when they were loaded).
// With load_module_only, as in DeepSpeed, only `module` is left out.
ClientState client_state_from(const c10::impl::GenericDict& states, bool module_only, bool optimizer_loaded,
                              bool lr_scheduler_loaded, const std::string& file);

}  // namespace deepspeed::checkpoint
