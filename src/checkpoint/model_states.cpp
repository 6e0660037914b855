#include "checkpoint/model_states.h"

#include <set>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed::checkpoint {
namespace {

// Every key make_model_states writes itself.
const std::set<std::string>& engine_keys() {
  static const std::set<std::string> keys = {
      "module",         "buffer_names",  "optimizer",     "param_shapes",
      "frozen_param_shapes", "shared_params", "frozen_param_fragments", "lr_scheduler",
      "data_sampler",   "random_ltd",    "sparse_tensor_module_names", "skipped_steps",
      "global_steps",   "global_samples", "micro_steps",  "dp_world_size",
      "mp_world_size",  "checkpoint_parallel_dimensions", "ds_config", "ds_version",
      "rng_states",     "ds_cpp_data_position", "num_experts", "ds_cpp_pipe_layout",
      "ds_cpp_tensor_parallel"};
  return keys;
}

}  // namespace

c10::impl::GenericDict make_model_states(const ModelStates& s, const ClientState& client_state) {
  for (const auto& [key, value] : client_state) {
    if (engine_keys().count(key)) {
      throw CheckpointError("save_checkpoint: client_state key '" + key +
                            "' is one the engine writes itself; use another name");
    }
  }
  auto d = make_string_dict();
  d.insert("module", s.module);
  d.insert("buffer_names", s.buffer_names);
  d.insert("optimizer", s.optimizer);
  d.insert("param_shapes", s.param_shapes);
  d.insert("frozen_param_shapes", s.frozen_param_shapes);
  d.insert("shared_params", s.shared_params);
  d.insert("frozen_param_fragments", s.frozen_param_fragments);
  d.insert("lr_scheduler", s.lr_scheduler);
  d.insert("data_sampler", c10::IValue());
  d.insert("random_ltd", c10::IValue());
  d.insert("sparse_tensor_module_names", make_list());
  d.insert("skipped_steps", s.skipped_steps);
  d.insert("global_steps", s.global_steps);
  d.insert("global_samples", s.global_samples);
  d.insert("micro_steps", s.micro_steps);
  d.insert("dp_world_size", s.dp_world_size);
  d.insert("mp_world_size", s.mp_world_size);
  auto dims = make_string_dict();
  dims.insert("pp_degree", s.pp_degree);
  dims.insert("tp_degree", s.tp_degree > 0 ? s.tp_degree : s.mp_world_size);
  d.insert("checkpoint_parallel_dimensions", dims);
  d.insert("ds_config", s.ds_config);
  d.insert("ds_version", s.ds_version);
  d.insert("rng_states", s.rng_states);
  d.insert("ds_cpp_data_position", s.data_position);
  for (const auto& [key, value] : client_state) d.insert(key, to_ivalue(value));
  return d;
}

ClientState client_state_from(const c10::impl::GenericDict& states, const std::string& file) {
  ClientState out;
  for (const auto& e : states) {
    const auto& key = e.key().toStringRef();
    if (engine_keys().count(key)) continue;
    out.emplace(key, to_state_value(e.value(), file + ": client state key '" + key + "'"));
  }
  return out;
}

}  // namespace deepspeed::checkpoint
