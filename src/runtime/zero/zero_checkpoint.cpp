// ZeroOptimizer's part of a checkpoint: DeepSpeed's stage_1_and_2.py / stage3.py state_dict
// under "optimizer_state_dict" of each rank's [bf16_]zero_pp_rank_<r>_mp_rank_<m>_optim_states.pt,
// with the partitions cut as DeepSpeed cuts them (checkpoint/deepspeed_zero_layout.h), not as
// this run's buckets do, so that DeepSpeed's zero_to_fp32.py and loader read them. The ranks
// exchange their partitions to write them, and read every rank's file to load them on any
// data-parallel size.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_set>

#include <torch/torch.h>

#include <deepspeed/errors.h>
#include <deepspeed/version.h>

#include "checkpoint/deepspeed_zero_layout.h"
#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/model_states.h"
#include "checkpoint/module_state.h"
#include "checkpoint/optimizer_state.h"
#include "checkpoint/python_value.h"
#include "checkpoint/zero_partition_layout.h"
#include "partitioning/partition_resharding.h"
#include "runtime/step/flat_tensors.h"
#include "runtime/step/loss_scaler_checkpoint.h"
#include "runtime/zero/zero_optimizer.h"

namespace deepspeed {
namespace {

using checkpoint::buffer_names;
using checkpoint::dict_at;
using checkpoint::int_list;
using checkpoint::make_list;
using checkpoint::make_string_dict;
using checkpoint::tensor_for_file;
using checkpoint::torch_size;

// The ZeRO optimizer's parameters as DeepSpeed lists them: each one's module name, and each
// optimizer group's parameters in the module's order (param_shapes' order).
struct ZeroParameterOrder {
  std::vector<std::string> names;            // per wrapper.parameters()
  std::vector<std::vector<int64_t>> groups;  // per group: indices into wrapper.parameters()
};

// The layout deepspeed-cpp wrote before it wrote DeepSpeed's: each rank's partitions as this
// run's buckets cut them, and the plan to rebuild them (ds_cpp_layout).
void load_bucketed_zero_optim_states(ZeroOptimizer& wrapper, Optimizer& optimizer,
                                     const std::vector<c10::impl::GenericDict>& files,
                                     const std::vector<std::string>& names, bool load_optimizer_states) {
  const int64_t old_n = static_cast<int64_t>(files.size());
  std::vector<c10::impl::GenericDict> inner;
  for (int64_t r = 0; r < old_n; ++r) {
    const auto v = dict_at(files[r], "optimizer_state_dict", names[r]);
    if (!v.isGenericDict()) throw CheckpointError(names[r] + ": optimizer_state_dict is not a dict");
    inner.push_back(v.toGenericDict());
  }
  // The saved layout must be this model's.
  const auto& f0 = names[0];
  const auto layout = checkpoint::read_zero_partition_layout(inner[0], f0);
  const auto& numels = layout.numels;
  std::vector<int64_t> mine;
  for (const auto& p : wrapper.parameters()) mine.push_back(p.numel());
  if (numels != mine || layout.groups != wrapper.parameter_groups()) {
    throw CheckpointError(f0 + ": the checkpoint's parameters (" + std::to_string(numels.size()) +
                          " tensors, their sizes and groups) are not this model's (" + std::to_string(mine.size()) +
                          " tensors)");
  }
  const int64_t partition_count = checkpoint::int_at(inner[0], "partition_count", f0 + ": optimizer_state_dict");
  if (partition_count != old_n) {
    throw CheckpointError(f0 + ": partition_count is " + std::to_string(partition_count) + " but " +
                          std::to_string(old_n) + " optimizer-state files were saved");
  }
  const auto old_plan = layout.plan(old_n);
  const auto& new_plan = wrapper.plan();
  const int64_t rank = wrapper.rank();
  const size_t group_count = wrapper.partitions().size();
  auto reshard = [&](int64_t g, const std::vector<torch::Tensor>& parts) {
    return take_partition(new_plan, g, rank, assemble_group(old_plan, g, parts));
  };

  std::vector<std::vector<torch::Tensor>> saved(group_count);  // [group][old rank]
  for (int64_t r = 0; r < old_n; ++r) {
    const std::string where = names[r] + ": single_partition_of_fp32_groups";
    const auto list = checkpoint::tensor_list(dict_at(inner[r], "single_partition_of_fp32_groups", names[r]), where);
    if (list.size() != group_count) {
      throw CheckpointError(where + " has " + std::to_string(list.size()) + " groups; this optimizer has " +
                            std::to_string(group_count));
    }
    for (size_t g = 0; g < group_count; ++g) {
      if (list[g].numel() != old_plan.partition_size(static_cast<int64_t>(g))) {
        throw CheckpointError(where + "[" + std::to_string(g) + "] has " + std::to_string(list[g].numel()) +
                              " elements; expected " + std::to_string(old_plan.partition_size(static_cast<int64_t>(g))));
      }
      saved[g].push_back(list[g].reshape(-1).to(torch::kFloat32));
    }
  }
  std::vector<torch::Tensor> masters;
  for (size_t g = 0; g < group_count; ++g) masters.push_back(reshard(static_cast<int64_t>(g), saved[g]));

  if (load_optimizer_states) {
    std::vector<c10::impl::GenericDict> bases, states;
    for (int64_t r = 0; r < old_n; ++r) {
      const auto b = dict_at(inner[r], "base_optimizer_state", names[r]);
      if (!b.isGenericDict()) throw CheckpointError(names[r] + ": base_optimizer_state is not a state dict");
      bases.push_back(b.toGenericDict());
      const auto st = dict_at(bases.back(), "state", names[r] + ": base_optimizer_state");
      if (!st.isGenericDict()) throw CheckpointError(names[r] + ": base_optimizer_state.state is not a dict");
      states.push_back(st.toGenericDict());
    }
    c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
    for (size_t g = 0; g < group_count; ++g) {
      const c10::IValue key(static_cast<int64_t>(g));
      if (!states[0].contains(key)) continue;  // the group never stepped
      auto entry = make_string_dict();
      for (const auto& kv : states[0].at(key).toGenericDict()) {
        const auto& name = kv.key().toStringRef();
        const auto t0 = kv.value().toTensor();
        // Per-element state (exp_avg, ...) is resharded; scalars (step) are the same everywhere.
        if (t0.dim() == 1 && t0.numel() == old_plan.partition_size(static_cast<int64_t>(g))) {
          std::vector<torch::Tensor> parts;
          for (int64_t r = 0; r < old_n; ++r) {
            if (!states[r].contains(key)) throw CheckpointError(names[r] + ": no optimizer state for group " + std::to_string(g));
            parts.push_back(states[r].at(key).toGenericDict().at(name).toTensor().reshape(-1));
          }
          entry.insert(name, reshard(static_cast<int64_t>(g), parts));
        } else {
          entry.insert(name, t0);
        }
      }
      state.insert(static_cast<int64_t>(g), entry);
    }
    auto base = make_string_dict();
    base.insert("state", state);
    base.insert("param_groups", dict_at(bases[0], "param_groups", f0 + ": base_optimizer_state"));
    checkpoint::load_optimizer_state(optimizer, base, f0);
    load_loss_scaler(wrapper.loss_scaler(), dict_at(inner[0], "loss_scaler", f0), f0 + ": loss_scaler");
  }
  wrapper.load_partitions(masters);
}

ZeroParameterOrder zero_parameter_order(const ZeroOptimizer& wrapper, const torch::nn::Module& module) {
  const auto& params = wrapper.parameters();
  std::map<const void*, int64_t> index;
  for (size_t i = 0; i < params.size(); ++i) index[params[i].unsafeGetTensorImpl()] = static_cast<int64_t>(i);
  ZeroParameterOrder order;
  order.names.resize(params.size());
  order.groups.resize(wrapper.plan().group_size.size());
  for (const auto& p : module.named_parameters()) {
    auto it = index.find(p.value().unsafeGetTensorImpl());
    if (it == index.end() || !order.names[it->second].empty()) continue;
    order.names[it->second] = p.key();
    order.groups.at(wrapper.parameter_groups()[it->second]).push_back(it->second);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (order.names[i].empty()) throw CheckpointError("ZeRO parameter " + std::to_string(i) + " is not one of the module's");
  }
  return order;
}

// DeepSpeed's param_shapes under ZeRO: per optimizer group, parameter name -> torch.Size, in
// the group's order (the order its flat partitions hold them).
c10::IValue param_shapes(const ZeroOptimizer& zero, const ZeroParameterOrder& order) {
  auto groups = make_list();
  for (const auto& members : order.groups) {
    auto shapes = make_string_dict();
    for (const auto i : members) shapes.insert(order.names[i], torch_size(zero.parameters()[i].sizes()));
    groups.push_back(shapes);
  }
  return groups;
}

// What ZeRO-3 restores from a saved module entry: the buffers and the parameters it does
// not partition (frozen ones, saved whole); the others come from the masters.
c10::impl::GenericDict unpartitioned_entries(const c10::impl::GenericDict& module_state, const torch::nn::Module& module,
                                             const std::vector<torch::Tensor>& partitioned) {
  std::unordered_set<const void*> managed;
  for (const auto& p : partitioned) managed.insert(p.unsafeGetTensorImpl());
  auto dict = make_string_dict();
  for (const auto& p : module.named_parameters()) {
    if (!managed.count(p.value().unsafeGetTensorImpl()) && module_state.contains(p.key())) {
      dict.insert(p.key(), module_state.at(p.key()));
    }
  }
  for (const auto& name : buffer_names(module)) {
    if (module_state.contains(name)) dict.insert(name, module_state.at(name));
  }
  return dict;
}

// Every parameter of group `g` (flattened; indexed like wrapper.parameters()), from each
// rank's partition `part` of it under this run's plan. Collective.
std::map<int64_t, torch::Tensor> gather_group(const ZeroOptimizer& wrapper, int64_t g, const torch::Tensor& part,
                                              comm::ProcessGroup& group, torch::Device device) {
  auto local = part.detach().reshape(-1).to(device);
  if (!group.supports(local.scalar_type())) local = local.to(torch::kFloat32);
  std::vector<torch::Tensor> all;
  for (int64_t r = 0; r < group.size(); ++r) all.push_back(torch::empty_like(local));
  group.all_gather(all, local);
  for (auto& t : all) t = t.cpu().to(part.scalar_type());
  const auto& plan = wrapper.plan();
  const auto dense = assemble_group(plan, g, all);
  const auto offsets = dense_offsets(plan, g);
  std::map<int64_t, torch::Tensor> out;
  for (size_t i = 0; i < wrapper.parameters().size(); ++i) {
    if (wrapper.parameter_groups()[i] != g) continue;
    const int64_t n = wrapper.parameters()[i].numel();
    out[static_cast<int64_t>(i)] = n == 0 ? torch::zeros({0}, dense.options()) : dense.narrow(0, offsets[i], n);
  }
  return out;
}

// This rank's piece of group `g` in DeepSpeed's layout (stage 1/2 with its padding).
torch::Tensor deepspeed_piece(const ZeroOptimizer& wrapper, const ZeroParameterOrder& order, int64_t g,
                              const torch::Tensor& part, comm::ProcessGroup& group, torch::Device device) {
  auto by_index = gather_group(wrapper, g, part, group, device);
  std::vector<torch::Tensor> params;
  for (const auto i : order.groups[g]) params.push_back(by_index.at(i));
  const int64_t world = group.size(), rank = group.rank();
  if (wrapper.stage() == 3) return checkpoint::zero3_partition(params, world, rank);
  const auto flat = params.empty() ? torch::zeros({0}, part.options().device(torch::kCPU)) : flatten_tensors(params);
  return checkpoint::zero12_partition(flat, world, rank);
}

// This rank's partition of group `g` under this run's plan, from whole flat tensors of the
// group's parameters (`pick(i)` for parameter i of wrapper.parameters()).
torch::Tensor rank_partition(const ZeroOptimizer& wrapper, int64_t g, const std::function<torch::Tensor(size_t)>& pick) {
  const auto& plan = wrapper.plan();
  const auto offsets = dense_offsets(plan, g);
  torch::Tensor dense;
  for (size_t i = 0; i < wrapper.parameters().size(); ++i) {
    if (wrapper.parameter_groups()[i] != g || wrapper.parameters()[i].numel() == 0) continue;
    const auto t = pick(i);
    if (!dense.defined()) dense = torch::zeros({dense_group_size(plan, g)}, t.options());
    dense.narrow(0, offsets[i], t.numel()).copy_(t.reshape(-1));
  }
  if (!dense.defined()) dense = torch::zeros({dense_group_size(plan, g)});
  return take_partition(plan, g, wrapper.rank(), dense);
}

// Whether any of the optimizer's group `g` is this ZeroOptimizer's (MoE splits the groups
// between several, each over its own process group).
bool manages_group(const ZeroOptimizer& wrapper, int64_t g) {
  const auto& groups = wrapper.parameter_groups();
  return std::find(groups.begin(), groups.end(), g) != groups.end();
}

c10::impl::GenericDict zero_optim_states_dict(const ZeroOptimizer& wrapper, const Optimizer& optimizer,
                                         const DeepSpeedConfig& config, const ZeroParameterOrder& order,
                                         comm::ProcessGroup& group, torch::Device device) {
  const auto& plan = wrapper.plan();
  const int64_t world = group.size(), rank = group.rank();
  const bool stage3 = wrapper.stage() == 3;
  const auto group_count = static_cast<int64_t>(plan.group_size.size());
  std::vector<int64_t> group_numel(group_count, 0);
  for (size_t i = 0; i < wrapper.parameters().size(); ++i) group_numel[wrapper.parameter_groups()[i]] += wrapper.parameters()[i].numel();

  // The masters and every per-element optimizer state in DeepSpeed's cut; the optimizer's
  // tensor g is group g's partition (one per group).
  auto partitions = make_list();
  c10::List<int64_t> paddings;
  for (int64_t g = 0; g < group_count; ++g) {
    if (!manages_group(wrapper, g)) {  // another ZeroOptimizer's (MoE experts): saved by it
      partitions.push_back(torch::zeros({0}));
      if (!stage3) paddings.push_back(0);
      continue;
    }
    auto piece = deepspeed_piece(wrapper, order, g, wrapper.partitions()[g], group, device);
    if (!stage3) {
      // Stage 1/2 files keep the masters without their padding (the optimizer state keeps it).
      const int64_t padding = checkpoint::zero12_padding(group_numel[g], world, rank);
      paddings.push_back(padding);
      piece = piece.narrow(0, 0, piece.numel() - padding);
    }
    partitions.push_back(tensor_for_file(piece));
  }
  auto base = checkpoint::optimizer_state_dict(optimizer).toGenericDict();
  auto state = base.at("state").toGenericDict();
  // The state of groups another ZeroOptimizer partitions is not this file's.
  std::vector<c10::IValue> others;
  for (const auto& kv : state) {
    if (!manages_group(wrapper, kv.key().toInt())) others.push_back(kv.key());
  }
  for (const auto& key : others) (void)state.erase(key);
  for (int64_t g = 0; g < group_count; ++g) {
    const c10::IValue key(g);
    if (!state.contains(key)) continue;
    auto entry = state.at(key).toGenericDict();
    for (const auto& kv : entry) {
      const auto t = kv.value().toTensor();
      if (t.dim() == 1 && t.numel() == plan.partition_size(g)) {
        entry.insert_or_assign(kv.key(), tensor_for_file(deepspeed_piece(wrapper, order, g, t, group, device)));
      }
    }
  }

  auto inner = make_string_dict();
  if (stage3) {  // stage3.py's _rigid_state_dict
    inner.insert("zero_stage", int64_t{3});
    inner.insert("loss_scaler", loss_scaler_object(wrapper.loss_scaler()));
    inner.insert("dynamic_loss_scale", wrapper.loss_scaler().dynamic());
    inner.insert("overflow", false);
    inner.insert("partition_count", world);
    inner.insert("optimizer_state_dict", base);
    inner.insert("fp32_flat_groups", partitions);
  } else {  // stage_1_and_2.py's state_dict
    inner.insert("loss_scaler", loss_scaler_object(wrapper.loss_scaler()));
    inner.insert("dynamic_loss_scale", wrapper.loss_scaler().dynamic());
    inner.insert("overflow", false);
    inner.insert("clip_grad", config.gradient_clipping);
    inner.insert("base_optimizer_state", base);
    inner.insert("single_partition_of_fp32_groups", partitions);
    // DeepSpeed pickles a ZeroStageEnum member here; its loaders and zero_to_fp32.py compare
    // it with integers, which an int does as well (docs/checkpointing.md).
    inner.insert("zero_stage", static_cast<int64_t>(wrapper.stage()));
    inner.insert("group_paddings", paddings);
    inner.insert("partition_count", world);
    inner.insert("ds_version", std::string(DEEPSPEED_VERSION));
    // Per group, where each parameter's piece held by this rank lies in its partition.
    auto mappings = make_list();
    for (int64_t g = 0; g < group_count; ++g) {
      auto mapping = make_string_dict();
      const int64_t size = checkpoint::zero12_partition_size(group_numel[g], world);
      const int64_t hp_start = rank * size;
      int64_t lp_start = 0;
      for (const auto i : order.groups[g]) {
        const int64_t numel = wrapper.parameters()[i].numel();
        const int64_t begin = std::max(lp_start, hp_start), end = std::min(lp_start + numel, hp_start + size);
        if (begin < end) {
          mapping.insert(order.names[i], checkpoint::python_instance("deepspeed.utils.tensor_fragment", "fragment_address",
                                                                     {{"numel", end - begin}, {"start", begin - hp_start}}));
        }
        lp_start += numel;
      }
      mappings.push_back(mapping);
    }
    inner.insert("param_slice_mappings", mappings);
  }
  if (stage3) inner.insert("ds_version", std::string(DEEPSPEED_VERSION));

  auto out = make_string_dict();
  out.insert("optimizer_state_dict", inner);
  out.insert("ds_config", checkpoint::to_ivalue(config.raw));
  out.insert("ds_version", std::string(DEEPSPEED_VERSION));
  return out;
}

void load_zero_optim_states_dict(ZeroOptimizer& wrapper, Optimizer& optimizer,
                            const std::vector<c10::impl::GenericDict>& files, const std::vector<std::string>& names,
                            const c10::IValue& param_shapes, const ZeroParameterOrder& order,
                            bool load_optimizer_states) {
  std::vector<c10::impl::GenericDict> inner;
  for (size_t r = 0; r < files.size(); ++r) {
    const auto v = dict_at(files[r], "optimizer_state_dict", names[r]);
    if (!v.isGenericDict()) throw CheckpointError(names[r] + ": optimizer_state_dict is not a dict");
    inner.push_back(v.toGenericDict());
  }
  if (inner.at(0).contains("ds_cpp_layout")) {
    load_bucketed_zero_optim_states(wrapper, optimizer, files, names, load_optimizer_states);
    return;
  }
  const auto& f0 = names[0];
  const auto groups = checkpoint::read_zero_groups(inner, names, param_shapes, load_optimizer_states);
  const auto& plan = wrapper.plan();
  const auto group_count = plan.group_size.size();
  if (groups.size() != group_count) {
    throw CheckpointError(f0 + ": the checkpoint has " + std::to_string(groups.size()) +
                          " parameter groups; this optimizer has " + std::to_string(group_count));
  }
  // Which of this run's parameters each saved name is, and that it is the same tensor.
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < order.names.size(); ++i) index[order.names[i]] = static_cast<int64_t>(i);
  std::vector<std::pair<size_t, size_t>> where(order.names.size(), {SIZE_MAX, 0});  // [param] -> (group, position)
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t k = 0; k < groups[g].names.size(); ++k) {
      const auto& name = groups[g].names[k];
      auto it = index.find(name);
      if (it == index.end()) throw CheckpointError(f0 + ": the checkpoint's parameter '" + name + "' is not one this optimizer trains");
      const auto i = static_cast<size_t>(it->second);
      if (wrapper.parameter_groups()[i] != static_cast<int64_t>(g) || groups[g].masters[k].numel() != wrapper.parameters()[i].numel()) {
        throw CheckpointError(f0 + ": the checkpoint's parameter '" + name + "' (group " + std::to_string(g) + ", " +
                              std::to_string(groups[g].masters[k].numel()) + " elements) is not this model's (group " +
                              std::to_string(wrapper.parameter_groups()[i]) + ", " +
                              std::to_string(wrapper.parameters()[i].numel()) + " elements)");
      }
      where[i] = {g, k};
    }
  }
  for (size_t i = 0; i < where.size(); ++i) {
    if (where[i].first == SIZE_MAX) throw CheckpointError(f0 + ": the checkpoint has no fp32 weights for '" + order.names[i] + "'");
  }
  auto partition = [&](int64_t g, const std::function<torch::Tensor(size_t)>& pick) {
    return rank_partition(wrapper, g, pick);
  };
  std::vector<torch::Tensor> masters;
  for (size_t g = 0; g < group_count; ++g) {
    masters.push_back(partition(static_cast<int64_t>(g), [&](size_t i) { return groups[where[i].first].masters[where[i].second]; }));
  }
  // The optimizer's later groups, past this plan's, are another ZeroOptimizer's (MoE experts).
  for (size_t g = group_count; g < wrapper.partitions().size(); ++g) masters.push_back(wrapper.partitions()[g]);
  if (load_optimizer_states) {
    c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
    for (size_t g = 0; g < group_count; ++g) {
      if (!groups[g].has_optimizer_state) continue;
      auto entry = make_string_dict();
      for (const auto& [key, per_param] : groups[g].per_element) {
        entry.insert(key, partition(static_cast<int64_t>(g), [&](size_t i) { return per_param.at(where[i].second); }));
      }
      for (const auto& [key, value] : groups[g].scalars) {
        // FusedAdam keeps its step as a Python int; ours is a 0-dim tensor.
        entry.insert(key, value.isTensor() ? value
                                           : c10::IValue(torch::full({}, value.isInt() ? static_cast<double>(value.toInt())
                                                                                         : value.toDouble())));
      }
      state.insert(static_cast<int64_t>(g), entry);
    }
    const std::string base_key = inner[0].contains("base_optimizer_state") ? "base_optimizer_state" : "optimizer_state_dict";
    const auto saved_base = dict_at(inner[0], base_key, f0 + ": optimizer_state_dict");
    if (!saved_base.isGenericDict()) throw CheckpointError(f0 + ": " + base_key + " is not a state dict");
    auto base = make_string_dict();
    base.insert("state", state);
    base.insert("param_groups", dict_at(saved_base.toGenericDict(), "param_groups", f0 + ": " + base_key));
    checkpoint::load_optimizer_state(optimizer, base, f0);
    if (inner[0].contains("loss_scaler")) load_loss_scaler(wrapper.loss_scaler(), inner[0].at("loss_scaler"), f0 + ": loss_scaler");
  }
  wrapper.load_partitions(masters);
}


}  // namespace

void ZeroOptimizer::add_to_model_states(checkpoint::ModelStates& states, const torch::nn::Module& module,
                                        const DeepSpeedConfig& /*config*/) const {
  states.param_shapes = param_shapes(*this, zero_parameter_order(*this, module));
  // Tied parameters are not detected: none are listed as shared (docs/checkpointing.md).
  states.shared_params = make_string_dict();
}

std::optional<c10::impl::GenericDict> ZeroOptimizer::optim_states_file(const torch::nn::Module& module,
                                                                      const DeepSpeedConfig& config) const {
  return zero_optim_states_dict(*this, *optimizer_, config, zero_parameter_order(*this, module), *group_,
                                group_->device());
}

ZeroOptimizer::WholeParameterStates ZeroOptimizer::whole_parameter_states() const {
  WholeParameterStates out;
  out.masters.resize(parameters_.size());
  out.state.resize(parameters_.size());
  const auto device = group_->device();
  for (int64_t g = 0; g < static_cast<int64_t>(plan().group_size.size()); ++g) {
    if (!manages_group(*this, g)) continue;
    for (auto& [i, t] : gather_group(*this, g, masters_[g], *group_, device)) out.masters[i] = t.clone();
    if (static_cast<size_t>(g) >= optimizer_->state().size()) continue;  // never stepped
    // std::map: every rank gathers the same keys in the same order.
    for (const auto& [key, t] : optimizer_->state()[g]) {
      if (t.dim() == 1 && t.numel() == plan().partition_size(g)) {
        for (auto& [i, whole] : gather_group(*this, g, t, *group_, device)) out.state[i][key] = whole.clone();
      } else {
        for (size_t i = 0; i < parameters_.size(); ++i) {
          if (groups_[i] == g) out.state[i][key] = t.detach().cpu().clone();
        }
      }
    }
  }
  return out;
}

void ZeroOptimizer::load_whole_parameter_states(const WholeParameterStates& whole, bool with_state) {
  if (whole.masters.size() != parameters_.size() || whole.state.size() != parameters_.size()) {
    throw CheckpointError("load_whole_parameter_states: " + std::to_string(whole.masters.size()) + " parameters given; " +
                          std::to_string(parameters_.size()) + " managed");
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (whole.masters[i].numel() != parameters_[i].numel()) {
      throw CheckpointError("load_whole_parameter_states: parameter " + std::to_string(i) + " has " +
                            std::to_string(parameters_[i].numel()) + " elements; the saved master " +
                            std::to_string(whole.masters[i].numel()));
    }
  }
  std::vector<torch::Tensor> masters = masters_;
  for (int64_t g = 0; g < static_cast<int64_t>(plan().group_size.size()); ++g) {
    if (!manages_group(*this, g)) continue;
    masters[g] = rank_partition(*this, g, [&](size_t i) { return whole.masters[i].to(torch::kFloat32); });
    if (!with_state) continue;
    const auto first = static_cast<size_t>(std::find(groups_.begin(), groups_.end(), g) - groups_.begin());
    auto& states = optimizer_->state();
    if (states.size() <= static_cast<size_t>(g)) states.resize(g + 1);
    auto& state = states[g];
    state.clear();
    for (const auto& [key, t] : whole.state[first]) {
      const bool per_element = t.dim() == 1 && t.numel() == parameters_[first].numel();
      state[key] = (per_element ? rank_partition(*this, g, [&](size_t i) { return whole.state[i].at(key); }) : t.clone())
                       .to(masters_[g].device());
    }
  }
  zero_grad();
  load_partitions(masters);
}

void ZeroOptimizer::load_checkpoint(const CheckpointLoad& load) {
  const auto module = dict_at(load.model_states, "module", load.file);
  if (!module.isGenericDict()) throw CheckpointError(load.file + ": 'module' is not a state dict");
  const auto order = zero_parameter_order(*this, load.module);
  auto load_states = [&](bool optimizer_states) {
    load_zero_optim_states_dict(*this, *optimizer_, load.optim_states, load.optim_state_files,
                                dict_at(load.model_states, "param_shapes", load.file), order, optimizer_states);
  };
  if (partitioned_) {
    // Stage 3 keeps the weights only in the masters: even the module alone comes from them.
    checkpoint::load_module_state(load.module, unpartitioned_entries(module.toGenericDict(), load.module, parameters_),
                                  /*strict=*/false, load.file);
    zero_grad();
    load_states(load.load_optimizer_states && !load.module_only);
    return;
  }
  checkpoint::load_module_state(load.module, module.toGenericDict(), load.strict, load.file);
  zero_grad();
  if (load.module_only) {
    refresh_partitions_from_parameters();
    return;
  }
  load_states(load.load_optimizer_states);
}

}  // namespace deepspeed
