// The pipeline engine's checkpoints, in DeepSpeed's layout: each layer's state dict in its own
// file (layer_XX[-model_YY]-model_states.pt, written by data-parallel rank 0 of its stage, or
// spread over the data-parallel ranks with checkpoint.parallel_write.pipeline_stage), and per
// stage an mp_rank_XX_model_states.pt whose "module" is None. Layer files are named by the
// layer's place in the whole model, so another number of stages reads them as they are; the
// optimizer state of each stage's file is found by parameter name and cut for the new stages
// (checkpoint/pipeline_restaging.h).
#include <deepspeed/pipe_engine.h>

#include <set>

#include <fmt/format.h>

#include <deepspeed/errors.h>
#include <deepspeed/pipe_partition.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/layout.h"
#include "checkpoint/module_state.h"
#include "checkpoint/pipeline_restaging.h"

namespace deepspeed {
namespace {

// The optimizer's parameters by module name, per group; nothing when the optimizer holds
// other tensors than the module's in another arrangement than the default one group.
std::optional<checkpoint::PipeParameterLayout> optimizer_layout(const torch::nn::Module& module,
                                                                const Optimizer& optimizer) {
  std::map<const void*, std::pair<std::string, int64_t>> names;
  std::vector<std::pair<std::string, int64_t>> trainable;
  for (const auto& p : module.named_parameters()) {
    names[p.value().unsafeGetTensorImpl()] = {p.key(), p.value().numel()};
    if (p.value().requires_grad()) trainable.emplace_back(p.key(), p.value().numel());
  }
  checkpoint::PipeParameterLayout layout;
  bool all_found = true;
  size_t count = 0;
  for (const auto& g : optimizer.param_groups()) {
    layout.names.emplace_back();
    layout.numels.emplace_back();
    for (const auto& t : g.params) {
      ++count;
      const auto it = names.find(t.unsafeGetTensorImpl());
      if (it == names.end()) {
        all_found = false;
        continue;
      }
      layout.names.back().push_back(it->second.first);
      layout.numels.back().push_back(it->second.second);
    }
  }
  if (all_found) return layout;
  // fp16/bf16: the groups hold fp32 masters of the module's trainable parameters, in order.
  if (optimizer.param_groups().size() == 1 && count == trainable.size()) {
    checkpoint::PipeParameterLayout by_order;
    by_order.names.emplace_back();
    by_order.numels.emplace_back();
    for (const auto& [name, numel] : trainable) {
      by_order.names[0].push_back(name);
      by_order.numels[0].push_back(numel);
    }
    return by_order;
  }
  return std::nullopt;
}

}  // namespace

c10::IValue PipelineEngine::module_checkpoint_entry(CheckpointFiles& files) const {
  const int64_t local_layers = pipe_module_->local_stop() - pipe_module_->local_start();
  const int64_t dp_rank = groups()->data_parallel()->rank();
  int64_t start = 0, stop = local_layers;
  if (config().checkpoint.parallel_write_pipeline_stage) {
    const auto offsets = pipe::partition_uniform(local_layers, dp_world_size());
    start = offsets[dp_rank];
    stop = offsets[dp_rank + 1];
  } else if (dp_rank != 0) {
    stop = 0;
  }
  for (const auto& [idx, module] : pipe_module_->layers_with_state()) {
    const int64_t local = idx - pipe_module_->local_start();
    if (local < start || local >= stop) continue;
    files.emplace_back(pipe_module_->ckpt_layer_path("", idx), checkpoint::module_state_dict(*module));
  }
  return c10::IValue();  // DeepSpeed's model-states file holds no module for a pipeline
}

void PipelineEngine::add_checkpoint_entries(c10::impl::GenericDict& states) const {
  auto entry = checkpoint::make_string_dict();
  auto parts = checkpoint::make_list();
  for (const auto p : pipe_module_->partitions()) parts.push_back(p);
  entry.insert("parts", parts);
  if (optimizer()) {
    if (const auto layout = optimizer_layout(*module(), *optimizer())) {
      const auto d = checkpoint::to_ivalue(*layout).toGenericDict();
      for (const auto& e : d) entry.insert(e.key(), e.value());
    }
  }
  states.insert("ds_cpp_pipe_layout", entry);
}

c10::impl::GenericDict PipelineEngine::prepare_loaded_states(const c10::impl::GenericDict& states,
                                                             const CheckpointFileAccess& files) const {
  auto out = states.copy();
  auto module_state = checkpoint::make_string_dict();
  for (const auto& source : pipe_module_->checkpoint_sources()) {
    const auto name = pipe_module_->ckpt_layer_path("", source.layer);
    if (!files.has(name)) {
      throw CheckpointError(fmt::format("the checkpoint has no {} (layer {}, which stage {} holds)", name, source.layer,
                                        stage_id_));
    }
    for (const auto& e : files.read(name)) module_state.insert(source.prefix + e.key().toStringRef(), e.value());
  }
  out.insert_or_assign("module", module_state);

  const bool has_layout = states.contains("ds_cpp_pipe_layout") && states.at("ds_cpp_pipe_layout").isGenericDict();
  // ZeRO's state is restaged from its own files (restaged_zero_state_files).
  if (saved_with_this_layout(states, files) || !files.load_optimizer_states || config().zero_stage() > 0) return out;
  const auto wanted = optimizer() ? optimizer_layout(*module(), *optimizer()) : std::nullopt;
  if (!has_layout || !wanted) {
    throw CheckpointError("the checkpoint was saved with another pipeline layout and its optimizer state cannot be "
                          "mapped onto this one (no parameter names saved, or an optimizer not built from the "
                          "module's parameters); pass load_optimizer_states=false");
  }
  // Every saved stage's file of this tensor-parallel rank.
  const int64_t tp = groups()->tensor_parallel()->size();
  const int64_t tp_rank = groups()->tensor_parallel()->rank();
  std::vector<checkpoint::SavedStageOptimizer> saved;
  for (int64_t s = 0; s < files.saved_mp_world_size / tp; ++s) {
    const auto name = checkpoint::model_states_file_name(s * tp + tp_rank);
    const auto d = files.read(name);
    const std::string where = name + ": ds_cpp_pipe_layout";
    if (!d.contains("ds_cpp_pipe_layout")) throw CheckpointError(where + " is missing");
    saved.push_back({checkpoint::pipe_parameter_layout(d.at("ds_cpp_pipe_layout"), where),
                     checkpoint::dict_at(d, "optimizer", name), name});
  }
  out.insert_or_assign("optimizer", checkpoint::restage_optimizer_state(saved, *wanted));
  return out;
}

bool PipelineEngine::saved_with_this_layout(const c10::impl::GenericDict& states,
                                            const CheckpointFileAccess& files) const {
  if (files.saved_mp_world_size != mp_world_size()) return false;
  if (!states.contains("ds_cpp_pipe_layout") || !states.at("ds_cpp_pipe_layout").isGenericDict()) return true;
  return checkpoint::int_list(states.at("ds_cpp_pipe_layout").toGenericDict().at("parts"), "ds_cpp_pipe_layout.parts") ==
         pipe_module_->partitions();
}

// Under ZeRO, a checkpoint of another pipeline layout: the ZeRO state of this stage's
// parameters, gathered by name from every saved stage's data-parallel files, as one
// data-parallel rank of a stage holding exactly them would have saved it; the ZeRO loader
// cuts it for this run's data-parallel size.
std::optional<Engine::ZeroStateFiles> PipelineEngine::restaged_zero_state_files(
    c10::impl::GenericDict& states, const CheckpointFileAccess& files) const {
  if (saved_with_this_layout(states, files)) return std::nullopt;
  std::vector<std::string> wanted;
  std::set<const void*> seen;
  for (const auto& p : module()->named_parameters()) {
    if (p.value().requires_grad() && seen.insert(p.value().unsafeGetTensorImpl()).second) wanted.push_back(p.key());
  }
  const int64_t tp = groups()->tensor_parallel()->size();
  const int64_t tp_rank = groups()->tensor_parallel()->rank();
  std::vector<checkpoint::SavedStageZeroState> saved;
  for (int64_t s = 0; s < files.saved_mp_world_size / tp; ++s) {
    const int64_t mp_rank = s * tp + tp_rank;
    const auto model_states = checkpoint::model_states_file_name(mp_rank);
    checkpoint::SavedStageZeroState stage;
    stage.param_shapes = checkpoint::dict_at(files.read(model_states), "param_shapes", model_states);
    for (int64_t r = 0; r < files.saved_dp_world_size; ++r) {
      auto name = checkpoint::zero_optim_states_file_name(r, mp_rank, false);
      if (!files.has(name)) name = checkpoint::zero_optim_states_file_name(r, mp_rank, true);
      stage.optim_states.push_back(files.read(name));
      stage.files.push_back(name);
    }
    saved.push_back(std::move(stage));
  }
  const bool with_optimizer_state = files.load_optimizer_states;
  auto restaged = checkpoint::restage_zero_state(saved, wanted, with_optimizer_state);
  states.insert_or_assign("param_shapes", restaged.param_shapes);
  return ZeroStateFiles{{restaged.optim_states},
                        {fmt::format("the ZeRO state of stage {} gathered from {} saved stages x {} data-parallel ranks",
                                     stage_id_, saved.size(), files.saved_dp_world_size)}};
}

}  // namespace deepspeed
