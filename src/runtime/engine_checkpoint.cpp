// Engine::save_checkpoint / load_checkpoint: the engine gathers what the next step depends
// on (module, optimizer, LR schedule, counters, RNG, data position) and hands it to
// src/checkpoint/, which knows the layout, the file protocol and the conversions.
#include <deepspeed/engine.h>

#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>
#include <deepspeed/version.h>

#include "checkpoint/atomic_file.h"
#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_writer.h"
#include "runtime/data_position.h"
#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/layout.h"
#include "checkpoint/model_states.h"
#include "checkpoint/module_state.h"
#include "checkpoint/optimizer_state.h"
#include "checkpoint/deepspeed_zero_layout.h"
#include "checkpoint/pickle_io.h"
#include "checkpoint/python_value.h"
#include "checkpoint/rank_exchange.h"
#include "checkpoint/rng_state.h"
#include "checkpoint/tag_validation.h"
#include "runtime/logger.h"
#include "runtime/moe_checkpoint.h"
#include "runtime/step/precision.h"
#include "runtime/step/optimizer_wrapper.h"
#include "runtime/tensor_parallel_checkpoint.h"

namespace deepspeed {
namespace {

using namespace checkpoint;

std::string tensor_bytes(const torch::Tensor& t) {
  if (!t.defined()) return {};
  auto c = t.contiguous().cpu();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * c.element_size());
}

torch::Tensor bytes_tensor(const std::string& bytes) {
  if (bytes.empty()) return {};
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kByte);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

// Every rank's generator states, as the list the model-states file keeps (collective).
c10::IValue gather_rng_states(comm::ProcessGroup& group, torch::Device device) {
  const auto mine = capture_rng_state(device);
  const auto cpu = all_gather_bytes(group, tensor_bytes(mine.cpu));
  const auto cuda = all_gather_bytes(group, tensor_bytes(mine.cuda));
  auto list = make_list();
  for (size_t r = 0; r < cpu.size(); ++r) list.push_back(to_ivalue(RngState{bytes_tensor(cpu[r]), bytes_tensor(cuda[r])}));
  return list;
}

// Parameters that do not train, by name (DeepSpeed's frozen parameters).
std::vector<std::pair<std::string, torch::Tensor>> frozen_parameters(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters()) {
    if (!p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  }
  return out;
}

LogLevel level_of(const DeepSpeedConfig& c) { return c.log_level ? parse_log_level(*c.log_level) : LogLevel::Info; }

// ZeRO-3's module entry, as DeepSpeed writes it: a partitioned parameter is an empty tensor
// (its values are the fp32 masters in the optim-states files, its shape in param_shapes);
// parameters kept whole and the buffers are there in full.
c10::impl::GenericDict stage3_module_state(const torch::nn::Module& module) {
  auto dict = make_string_dict();
  for (const auto& p : module.named_parameters()) {
    const auto& t = p.value();
    const bool held = t.storage().nbytes() > 0;
    dict.insert(p.key(), held ? t.detach() : torch::empty({0}, t.options().device(torch::kCPU)));
  }
  for (const auto& b : module.named_buffers()) dict.insert(b.key(), b.value().detach());
  return dict;
}

// Per optimizer group, the global name and size of each tensor (stage 0 with MoE layers):
// what lets the expert-parallel optimizer files move state between expert-parallel sizes.
struct OptimizerTensorNames {
  std::vector<std::vector<std::string>> names;
  std::vector<std::vector<int64_t>> numels;
};

OptimizerTensorNames optimizer_tensor_names(const OptimizerWrapper& wrapper, const Optimizer& optimizer,
                                            const torch::nn::Module& module,
                                            const std::vector<MoeLayerPlacement>& layers) {
  std::unordered_map<const void*, std::string> name_of;
  for (const auto& p : module.named_parameters()) name_of.emplace(p.value().unsafeGetTensorImpl(), p.key());
  const auto behind = wrapper.optimizer_tensor_parameters();
  OptimizerTensorNames out;
  size_t k = 0;
  for (size_t g = 0; g < optimizer.param_groups().size(); ++g) {
    auto& names = out.names.emplace_back();
    auto& numels = out.numels.emplace_back();
    for (const auto& t : optimizer.param_groups()[g].params) {
      const auto& p = k < behind.size() ? behind[k] : torch::Tensor();
      ++k;
      const auto it = p.defined() ? name_of.find(p.unsafeGetTensorImpl()) : name_of.end();
      // A tensor the model does not hold keeps its place by group and position.
      names.push_back(it == name_of.end() ? fmt::format("<group {} tensor {}>", g, names.size())
                                          : global_expert_name(it->second, layers));
      numels.push_back(t.numel());
    }
  }
  return out;
}

}  // namespace

c10::IValue Engine::module_checkpoint_entry(CheckpointFiles& /*files*/) const { return module_state_dict(*module_); }

bool Engine::save_checkpoint(const std::string& save_dir, std::optional<std::string> tag_arg,
                             const ClientState& client_state, bool save_latest) {
  if (save_dir.empty()) throw CheckpointError("save_dir must be a non-empty string, got ''");
  const std::string tag = tag_arg.value_or(default_tag(global_steps_));
  check_tag(tag);
  const Logger logger(group_->rank(), level_of(config_));
  if (!validate_tag(*group_, tag, parse_tag_validation(config_.checkpoint.tag_validation))) {
    logger.log(LogLevel::Warning, inconsistent_tag_message(group_->rank(), tag), /*all_ranks=*/true);
  }
  const auto rng_states = gather_rng_states(*group_, device_);
  // Files are named by data-parallel rank and model-parallel rank (DeepSpeed's
  // checkpoint_mp_rank: 0 without model parallelism).
  const int64_t rank = dp_group_->rank();
  const int64_t mp_rank = mp_world_size() > 1 ? groups_->model_parallel()->rank() : 0;
  const auto path = std::filesystem::path(save_dir) / tag;
  // MoE layers: the experts go to files of their own (runtime/moe_checkpoint.h).
  const auto moe_layers = moe_layer_placements(*module_, *groups_);
  logger.info(fmt::format("[Torch] Checkpoint {} is about to be saved!", tag));

  auto make_files = [&] {
  std::vector<FileToWrite> files;
  // The module's own files (a pipeline's layers), where the engine keeps it outside the
  // model-states file; stage 3 keeps its partitioned form there.
  CheckpointFiles module_files;
  const c10::IValue module_entry =
      config_.zero_stage() == 3 ? c10::IValue(stage3_module_state(*module_)) : module_checkpoint_entry(module_files);
  for (const auto& [fname, content] : module_files) {
    logger.info("Saving model checkpoint: " + (path / fname).string());
    files.push_back({fname, to_pickle_bytes(content)});
  }
  // DeepSpeed names a bf16 run's shards bf16_zero_pp_rank_* (engine.py's _get_zero_ckpt_name).
  for (const auto& name : files_written_by(config_.zero_stage(), rank, mp_rank, config_.bf16_enabled())) {
    const bool stage3 = config_.zero_stage() == 3;
    if (name != (stage3 ? zero_model_states_file_name(rank, mp_rank) : model_states_file_name(mp_rank))) {
      // A ZeRO rank's optimizer shard.
      auto shard = wrapper_->optim_states_file(*module_, config_);
      if (!shard) throw CheckpointError("save_checkpoint: ZeRO stage without a ZeRO optimizer (no optimizer configured?)");
      files.push_back({name, to_pickle_bytes(*shard)});
      continue;
    }
    // The model states, written by DP rank 0 (under ZeRO-3 by every rank, as DeepSpeed).
    ModelStates s;
    s.module = module_entry;
    if (!moe_layers.empty() && s.module.isGenericDict()) s.module = without_experts(s.module.toGenericDict());
    auto buffers = make_list();
    for (const auto& b : buffer_names(*module_)) buffers.push_back(b);
    s.buffer_names = buffers;
    wrapper_->add_to_model_states(s, *module_, config_);
    // From stage 2 on DeepSpeed lists the frozen parameters; stage 3 keeps each rank's piece.
    if (config_.zero_stage() >= 2) {
      auto shapes = make_string_dict();
      auto fragments = make_string_dict();
      for (const auto& [pname, t] : frozen_parameters(*module_)) {
        shapes.insert(pname, torch_size(t.sizes()));
        fragments.insert(pname, stage3 ? zero3_partition({t.detach().cpu()}, dp_world_size(), rank) : t.detach());
      }
      s.frozen_param_shapes = shapes;
      s.frozen_param_fragments = fragments;
    }
    s.lr_scheduler = lr_scheduler_ ? to_ivalue(lr_scheduler_->state_dict()) : c10::IValue();
    s.data_position = training_dataloader_ ? loader_position(*training_dataloader_) : c10::IValue();
    s.rng_states = rng_states;
    s.ds_config = to_ivalue(config_.raw);
    s.global_steps = global_steps_;
    s.global_samples = global_samples_;
    s.micro_steps = micro_steps_;
    s.skipped_steps = skipped_steps_;
    s.dp_world_size = dp_world_size();
    s.mp_world_size = mp_world_size();
    s.pp_degree = groups_->pipe_parallel()->size();
    s.tp_degree = groups_->tensor_parallel()->size();
    s.ds_version = DEEPSPEED_VERSION;
    logger.info("Saving model checkpoint: " + (path / name).string());
    auto states = make_model_states(s, client_state);
    if (!moe_layers.empty()) {
      c10::List<int64_t> num_experts;
      for (const auto& l : moe_layers) num_experts.push_back(l.num_experts);
      states.insert("num_experts", num_experts);
    }
    add_checkpoint_entries(states);
    // Which parameters this tensor rank holds parts of: what loads it on another degree.
    if (const auto splits = tensor_parallel::split_parameters(*module_); !splits.empty()) {
      states.insert("ds_cpp_tensor_parallel", tensor_parallel_entry(splits));
    }
    files.push_back({name, to_pickle_bytes(states)});
  }
  if (!moe_layers.empty()) {
    for (auto& f : expert_files(*module_, moe_layers, mp_rank)) files.push_back(std::move(f));
    // Below ZeRO, the first rank of each expert-data-parallel group writes its optimizer.
    const auto& largest = largest_expert_parallel_layer(moe_layers);
    if (optimizer_ && config_.zero_stage() == 0 && largest.edp_rank == 0) {
      ModelStates own;
      wrapper_->add_to_model_states(own, *module_, config_);
      const auto t = optimizer_tensor_names(*wrapper_, *optimizer_, *module_, moe_layers);
      files.push_back(expert_optimizer_file(own.optimizer, t.names, t.numels, largest.ep_rank, mp_rank));
    }
    // Under ZeRO every rank gathers its experts' partitions; the same first rank writes them.
    if (optimizer_ && config_.zero_stage() > 0) {
      const auto own = wrapper_->expert_optimizer_state(
          *module_, [&](const std::string& name) { return global_expert_name(name, moe_layers); });
      if (own && largest.edp_rank == 0) {
        files.push_back(expert_optimizer_file(own->optimizer, own->names, own->numels, largest.ep_rank, mp_rank));
      }
    }
  }
  return files;
  };
  Manifest header;
  header.tag = tag;
  header.zero_stage = config_.zero_stage();
  header.dp_world_size = dp_world_size();
  header.mp_world_size = mp_world_size();
  CheckpointStorage default_storage;
  write_checkpoint(*group_, checkpoint_storage_ ? *checkpoint_storage_ : default_storage, save_dir, header, make_files,
                   save_latest);
  logger.info(fmt::format("[Torch] Checkpoint {} is ready now!", tag));
  return true;
}

bool Engine::save_16bit_model(const std::string& save_dir, const std::string& save_filename) {
  const Logger logger(group_->rank(), level_of(config_));
  const auto path = std::filesystem::path(save_dir) / save_filename;
  const bool stage3 = wrapper_->partitions_parameters();
  if (stage3 && !config_.zero_optimization.stage3_gather_16bit_weights_on_model_save) {
    logger.warning("Did not save the model " + path.string() +
                   " because stage3_gather_16bit_weights_on_model_save is False");
    return false;
  }
  const auto whole = gathered_parameters();
  // A failure on rank 0 becomes an error on every rank (none waits forever).
  run_phase(*group_, "writing " + path.string(), [&] {
    if (group_->rank() != 0) return;
    logger.info("Saving model weights to " + path.string());
    std::filesystem::create_directories(save_dir);
    write_file_atomically(path, to_pickle_bytes(module_state_dict(*module_)));
  });
  return true;
}

LoadCheckpointResult Engine::load_checkpoint(const std::string& load_dir, std::optional<std::string> tag,
                                             bool load_module_strict, bool load_optimizer_states,
                                             bool load_lr_scheduler_states, bool load_module_only) {
  const Logger logger(group_->rank(), level_of(config_));
  CheckpointStorage default_storage;
  CheckpointStorage& storage = checkpoint_storage_ ? *checkpoint_storage_ : default_storage;
  if (!tag) {
    std::optional<std::string> latest;
    run_phase(*group_, "reading " + (std::filesystem::path(load_dir) / kLatestFile).string(),
              [&] { latest = read_latest_tag(storage, load_dir); });
    // Every rank must take the same branch, or the ones that go on would wait forever.
    auto found = torch::full({1}, latest ? 1 : 0, torch::TensorOptions().dtype(torch::kLong).device(device_));
    group_->all_reduce(found, comm::ReduceOp::Min);
    if (found.item<int64_t>() == 0) {
      logger.warning(missing_latest_message(load_dir));
      return {};
    }
    tag = latest;
  }
  if (!validate_tag(*group_, *tag, parse_tag_validation(config_.checkpoint.tag_validation))) {
    logger.log(LogLevel::Warning, inconsistent_tag_message(group_->rank(), *tag), /*all_ranks=*/true);
  }

  // Read and check everything before changing anything.
  std::optional<CheckpointReader> reader;
  std::optional<c10::impl::GenericDict> states;
  std::string file;
  std::vector<c10::impl::GenericDict> zero_files;
  std::vector<std::string> zero_names;
  std::optional<c10::IValue> expert_optimizer;  // MoE under ZeRO
  const auto moe_layers = moe_layer_placements(*module_, *groups_);
  run_phase(*group_, "reading the checkpoint " + (std::filesystem::path(load_dir) / *tag).string(), [&] {
    reader.emplace(storage, load_dir, *tag);
    const auto& m = reader->manifest();
    if (reader->renamed()) {
      logger.info(fmt::format("checkpoint folder {} was saved as tag '{}' (renamed since); loading it",
                              reader->dir().string(), m.tag));
    }
    // Stages 1 and 2 share one layout; 0 and ZeRO do not.
    if (m.zero_stage != config_.zero_stage() && !(m.zero_stage > 0 && config_.zero_stage() > 0 &&
                                                   m.zero_stage < 3 && config_.zero_stage() < 3)) {
      throw CheckpointError(fmt::format("checkpoint {} was saved with ZeRO stage {}; this engine runs stage {}",
                                        reader->dir().string(), m.zero_stage, config_.zero_stage()));
    }
    if (m.mp_world_size != mp_world_size() && !loads_other_model_parallel_size()) {
      // Another tensor-parallel degree: split parameters put together and cut again.
      if (!moe_layers.empty() || groups_->pipe_parallel()->size() > 1 || config_.zero_stage() == 3) {
        throw CheckpointError(fmt::format("checkpoint count {} is different from saved mp_world_size {}",
                                          mp_world_size(), m.mp_world_size));
      }
      TensorParallelCheckpointLoad tp_load;
      tp_load.read = [&](const std::string& n) { return reader->read_dict(n); };
      tp_load.has = [&](const std::string& n) { return reader->manifest().files.count(n) > 0; };
      tp_load.dir = reader->dir().string();
      tp_load.saved_tp = m.mp_world_size;
      tp_load.saved_dp = m.dp_world_size;
      tp_load.saved_zero_stage = m.zero_stage;
      tp_load.load_optimizer_states = load_optimizer_states && !load_module_only;
      tp_load.tp = groups_->tensor_parallel()->size();
      tp_load.tp_rank = groups_->tensor_parallel()->rank();
      tp_load.splits = tensor_parallel::split_parameters(*module_);
      tp_load.module = module_.get();
      if (optimizer_) tp_load.optimizer_names = optimizer_tensor_names(*wrapper_, *optimizer_, *module_, {}).names;
      auto resplit = resplit_tensor_parallel_checkpoint(tp_load);
      logger.info(fmt::format("Loading a checkpoint saved on {} tensor-parallel ranks onto {}", m.mp_world_size,
                              tp_load.tp));
      file = resplit.file;
      states = std::move(resplit.model_states);
      zero_files = std::move(resplit.zero_files);
      zero_names = std::move(resplit.zero_names);
      return;
    }
    const int64_t dp_rank = dp_group_->rank();
    // A pipeline saved with fewer stages: the counters, LR schedule and RNG of its first file
    // (the module and the optimizer state come from every stage's files).
    const int64_t own_mp_rank = mp_world_size() > 1 ? groups_->model_parallel()->rank() : 0;
    const int64_t mp_rank = own_mp_rank < m.mp_world_size ? own_mp_rank : 0;
    // ZeRO-3: this rank's own file where the saved run had this rank, else rank 0's.
    const auto name = config_.zero_stage() == 3
                          ? zero_model_states_file_name(dp_rank < m.dp_world_size ? dp_rank : 0, mp_rank)
                          : model_states_file_name(mp_rank);
    file = (reader->dir() / name).string();
    CheckpointFileAccess access;
    access.read = [&](const std::string& n) { return reader->read_dict(n); };
    access.has = [&](const std::string& n) { return reader->manifest().files.count(n) > 0; };
    access.saved_mp_world_size = m.mp_world_size;
    access.saved_dp_world_size = m.dp_world_size;
    access.load_optimizer_states = load_optimizer_states && !load_module_only;
    access.module_only = load_module_only;
    states = prepare_loaded_states(reader->read_dict(name), access);
    if (!moe_layers.empty()) {
      // The experts this rank holds now, from their own files, and (stage 0) the optimizer
      // state that goes with them.
      auto merged = states->copy();
      auto module_state = dict_at(merged, "module", file).toGenericDict().copy();
      add_local_experts(module_state, *reader, moe_layers, mp_rank);
      merged.insert_or_assign("module", module_state);
      if (optimizer_ && config_.zero_stage() == 0 && load_optimizer_states && !load_module_only) {
        const auto t = optimizer_tensor_names(*wrapper_, *optimizer_, *module_, moe_layers);
        merged.insert_or_assign("optimizer", expert_optimizer_state(*reader, t.names,
                                                                    largest_expert_parallel_layer(moe_layers).ep_rank,
                                                                    mp_rank));
      }
      if (optimizer_ && config_.zero_stage() > 0 && !load_module_only) {
        const auto names = wrapper_->expert_optimizer_names(
            *module_, [&](const std::string& name) { return global_expert_name(name, moe_layers); });
        if (!names.empty()) {
          expert_optimizer = expert_optimizer_state(*reader, names, largest_expert_parallel_layer(moe_layers).ep_rank,
                                                    mp_rank);
        }
      }
      states = merged;
    }
    // ZeRO-3 keeps the weights only in the masters, so even load_module_only reads them.
    if (config_.zero_stage() > 0 && (!load_module_only || config_.zero_stage() == 3)) {
      if (auto restaged = restaged_zero_state_files(*states, access)) {
        zero_files = std::move(restaged->files);
        zero_names = std::move(restaged->names);
      } else {
        // Every saved rank's shard: this run may have another world size.
        for (int64_t r = 0; r < m.dp_world_size; ++r) {
          std::string shard = zero_optim_states_file_name(r, mp_rank, false);
          if (!m.files.count(shard)) shard = zero_optim_states_file_name(r, mp_rank, true);
          zero_names.push_back((reader->dir() / shard).string());
          zero_files.push_back(reader->read_dict(shard));
        }
      }
    }
  });

  if (!reader->verified()) {
    logger.info("Loading " + reader->dir().string() + ", which has no " + kManifestFile +
                " (a checkpoint of Python DeepSpeed): its files are not verified");
  }
  const auto& sd = *states;
  std::optional<std::string> data_note;
  run_phase(*group_, "restoring the checkpoint " + file, [&] {
    wrapper_->load_checkpoint({*module_, sd, file, zero_files, zero_names, load_module_strict, load_optimizer_states,
                               load_module_only, expert_optimizer ? &*expert_optimizer : nullptr});
    if (load_module_only) return;
    if (load_lr_scheduler_states && lr_scheduler_) {
      const auto lr = dict_at(sd, "lr_scheduler", file);
      if (!lr.isNone()) lr_scheduler_->load_state_dict(to_json(lr, file + ": lr_scheduler"));
    }
    global_steps_ = int_at(sd, "global_steps", file);
    global_samples_ = sd.contains("global_samples") ? int_at(sd, "global_samples", file)
                                                     : global_steps_ * train_batch_size();
    skipped_steps_ = int_at(sd, "skipped_steps", file);
    // The micro-step count decides the accumulation boundaries; with another
    // gradient_accumulation_steps (another world size) it restarts at this boundary.
    const auto saved_config = sd.contains("ds_config") ? to_json(sd.at("ds_config"), file) : nlohmann::json();
    const bool same_gas = sd.contains("micro_steps") && saved_config.is_object() &&
                          saved_config.value("gradient_accumulation_steps", int64_t{-1}) == gradient_accumulation_steps();
    micro_steps_ = same_gas ? int_at(sd, "micro_steps", file) : global_steps_ * gradient_accumulation_steps();
    // Ours, or where checkpoints written before it was ours kept it; DeepSpeed's own
    // data_sampler (a curriculum sampler's state, or None) is not a position.
    const char* position_key = sd.contains("ds_cpp_data_position") ? "ds_cpp_data_position" : "data_sampler";
    if (training_dataloader_ && sd.contains(position_key) && sd.at(position_key).isGenericDict() &&
        sd.at(position_key).toGenericDict().contains("consumed_samples")) {
      data_note = restore_loader_position(*training_dataloader_, sd.at(position_key), file);
    }
    if (sd.contains("rng_states") && sd.at("rng_states").isList()) {
      const auto rngs = sd.at("rng_states").toListRef();
      if (group_->rank() < static_cast<int64_t>(rngs.size())) {
        restore_rng_state(rng_state_from(rngs[group_->rank()], file), device_);
      }
    }
  });

  const int64_t saved_dp = reader->manifest().dp_world_size;
  if (saved_dp != dp_world_size()) {
    logger.info(fmt::format("Loading a checkpoint saved on {} data-parallel ranks onto {}{}", saved_dp,
                            dp_world_size(),
                            dp_world_size() > saved_dp && !load_module_only
                                ? fmt::format("; ranks {}.. keep their own RNG state", saved_dp)
                                : std::string()));
  }
  if (data_note) logger.warning(*data_note);
  return {file, client_state_from(sd, file)};
}

}  // namespace deepspeed
