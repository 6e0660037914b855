#include "runtime/zero/moe_zero_optimizer.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/optimizer_state.h"

namespace deepspeed {
namespace {

// Per optimizer group: -1 when it holds no expert, else the index of its experts' group.
std::vector<int64_t> expert_group_of_each_optimizer_group(const Optimizer& optimizer, const ExpertParameters& experts) {
  std::unordered_map<const void*, int64_t> expert_of;
  for (size_t e = 0; e < experts.size(); ++e) {
    for (const auto& p : experts[e].parameters) expert_of.emplace(p.unsafeGetTensorImpl(), static_cast<int64_t>(e));
  }
  std::vector<int64_t> out;
  bool any = false;
  for (size_t g = 0; g < optimizer.param_groups().size(); ++g) {
    std::optional<int64_t> owner;
    bool dense = false;
    for (const auto& p : optimizer.param_groups()[g].params) {
      const auto it = expert_of.find(p.unsafeGetTensorImpl());
      if (it == expert_of.end()) {
        dense = true;
      } else if (!owner) {
        owner = it->second;
      } else if (*owner != it->second) {
        throw EngineError(fmt::format("optimizer group {} holds experts of two expert-parallel sizes; under ZeRO each "
                                      "size needs groups of its own (docs/moe.md)",
                                      g));
      }
    }
    if (owner && dense) {
      throw EngineError(fmt::format("optimizer group {} mixes MoE expert parameters with others; under ZeRO the experts "
                                    "need groups of their own: split_params_into_different_moe_groups_for_optimizer "
                                    "(docs/moe.md)",
                                    g));
    }
    any = any || owner.has_value();
    out.push_back(owner.value_or(-1));
  }
  if (!any) {
    throw EngineError("The model has moe layers, but None of the param groups are marked as MoE. Create a param group "
                      "with 'moe' key set to True before creating optimizer (split_params_into_different_moe_groups_"
                      "for_optimizer, docs/moe.md)");
  }
  return out;
}

std::vector<bool> groups_where(const std::vector<int64_t>& owner, int64_t value) {
  std::vector<bool> out;
  for (int64_t o : owner) out.push_back(o == value);
  return out;
}

}  // namespace

MoeZeroOptimizer::MoeZeroOptimizer(std::vector<torch::Tensor> parameters, std::shared_ptr<comm::ProcessGroup> group,
                                   const DeepSpeedConfig& config, std::shared_ptr<Optimizer> optimizer,
                                   ModelParallelGradients model_parallel, const ExpertParameters& experts)
    : OptimizerWrapper(loss_scaler_options(config, LossScaleAlgorithm::Zero), model_parallel),
      group_(std::move(group)),
      optimizer_(std::move(optimizer)) {
  if (!optimizer_) throw EngineError("ZeRO needs an optimizer");
  const auto owner = expert_group_of_each_optimizer_group(*optimizer_, experts);
  dense_ = std::make_unique<ZeroOptimizer>(parameters, group_, config, optimizer_, std::move(model_parallel),
                                           ZeroOptimizerScope{groups_where(owner, -1), 0.0});
  for (size_t e = 0; e < experts.size(); ++e) {
    const auto scope = groups_where(owner, static_cast<int64_t>(e));
    if (std::find(scope.begin(), scope.end(), true) == scope.end()) {
      throw EngineError(fmt::format("no optimizer group holds the experts of expert-parallel size {}; under ZeRO they "
                                    "need groups of their own (docs/moe.md)",
                                    experts[e].expert_parallel->size()));
    }
    // An expert's gradient already sums the tokens of its whole expert-parallel group: summed
    // over the ranks that hold the same expert, it is divided by the data-parallel size.
    experts_.push_back({std::make_unique<ZeroOptimizer>(parameters, experts[e].expert_data_parallel, config, optimizer_,
                                                        ModelParallelGradients{},
                                                        ZeroOptimizerScope{scope, static_cast<double>(group_->size())}),
                        experts[e].expert_parallel});
  }
}

void MoeZeroOptimizer::before_backward(bool boundary) {
  dense_->before_backward(boundary);
  for (auto& e : experts_) e.zero->before_backward(boundary);
}

void MoeZeroOptimizer::after_backward(bool boundary) {
  dense_->after_backward(boundary);
  for (auto& e : experts_) e.zero->after_backward(boundary);
}

void MoeZeroOptimizer::zero_grad() {
  dense_->zero_grad();
  for (auto& e : experts_) e.zero->zero_grad();
}

MemoryReport MoeZeroOptimizer::memory_report() const {
  auto r = dense_->memory_report();
  for (const auto& e : experts_) {
    const auto x = e.zero->memory_report();
    r.parameters += x.parameters;
    r.parameters_peak += x.parameters_peak;
    r.gradients += x.gradients;
    r.master_weights += x.master_weights;
    r.communication_buffers += x.communication_buffers;
  }
  r.optimizer_states = optimizer_state_bytes(*optimizer_);  // one optimizer: counted once
  return r;
}

double MoeZeroOptimizer::last_communication_wait() const {
  double wait = dense_->last_communication_wait();
  for (const auto& e : experts_) wait += e.zero->last_communication_wait();
  return wait;
}

void MoeZeroOptimizer::add_to_model_states(checkpoint::ModelStates& states, const torch::nn::Module& module,
                                           const DeepSpeedConfig& config) const {
  dense_->add_to_model_states(states, module, config);
}

std::optional<c10::impl::GenericDict> MoeZeroOptimizer::optim_states_file(const torch::nn::Module& module,
                                                                          const DeepSpeedConfig& config) const {
  // The dense part's file carries the loss scaler: the one this wrapper steps with.
  dense_->loss_scaler() = loss_scaler();
  return dense_->optim_states_file(module, config);
}

std::vector<MoeZeroOptimizer::ExpertTensor> MoeZeroOptimizer::expert_tensors() const {
  std::vector<ExpertTensor> out;
  for (size_t g = 0; g < optimizer_->param_groups().size(); ++g) {
    for (size_t e = 0; e < experts_.size(); ++e) {
      const auto& groups = experts_[e].zero->parameter_groups();
      for (size_t i = 0; i < groups.size(); ++i) {
        if (groups[i] == static_cast<int64_t>(g)) out.push_back({g, e, i});
      }
    }
  }
  return out;
}

std::vector<std::vector<std::string>> MoeZeroOptimizer::expert_optimizer_names(const torch::nn::Module& module,
                                                                               const GlobalName& global_name) const {
  std::unordered_map<const void*, std::string> name_of;
  for (const auto& p : module.named_parameters()) name_of.emplace(p.value().unsafeGetTensorImpl(), p.key());
  std::vector<std::vector<std::string>> names(optimizer_->param_groups().size());
  for (const auto& t : expert_tensors()) {
    const auto& p = experts_[t.part].zero->parameters()[t.index];
    names[t.group].push_back(global_name(name_of.at(p.unsafeGetTensorImpl())));
  }
  return names;
}

std::optional<OptimizerWrapper::ExpertOptimizerState> MoeZeroOptimizer::expert_optimizer_state(
    const torch::nn::Module& module, const GlobalName& global_name) const {
  std::vector<ZeroOptimizer::WholeParameterStates> whole;
  for (const auto& e : experts_) whole.push_back(e.zero->whole_parameter_states());
  const size_t group_count = optimizer_->param_groups().size();
  ExpertOptimizerState out;
  out.names = expert_optimizer_names(module, global_name);
  out.numels.resize(group_count);
  std::vector<std::vector<torch::Tensor>> masters(group_count);
  std::vector<c10::List<int64_t>> indices(group_count);
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  int64_t index = 0;
  for (const auto& t : expert_tensors()) {
    const auto& w = whole[t.part];
    masters[t.group].push_back(w.masters[t.index].reshape(-1));
    out.numels[t.group].push_back(w.masters[t.index].numel());
    if (!w.state[t.index].empty()) {
      auto entry = checkpoint::make_string_dict();
      for (const auto& [key, value] : w.state[t.index]) entry.insert(key, value);
      state.insert(index, entry);
    }
    indices[t.group].push_back(index++);
  }
  auto param_groups = checkpoint::make_list();
  const auto optimizer_dict = checkpoint::optimizer_state_dict(*optimizer_).toGenericDict();
  const auto saved_groups = optimizer_dict.at("param_groups");
  const auto saved = saved_groups.toListRef();
  for (size_t g = 0; g < group_count; ++g) {
    auto group = saved[g].toGenericDict().copy();
    group.insert_or_assign("params", indices[g]);
    param_groups.push_back(group);
  }
  auto torch_dict = checkpoint::make_string_dict();
  torch_dict.insert("state", state);
  torch_dict.insert("param_groups", param_groups);
  // FP16_Optimizer's shape (as stage 0's bf16 files): the fp32 masters beside the state.
  auto flat = checkpoint::make_list();
  for (const auto& m : masters) flat.push_back(m.empty() ? torch::zeros({0}) : torch::cat(m));
  auto dict = checkpoint::make_string_dict();
  dict.insert("optimizer_state_dict", torch_dict);
  dict.insert("fp32_groups_flat", flat);
  out.optimizer = dict;
  return out;
}

void MoeZeroOptimizer::load_checkpoint(const CheckpointLoad& load) {
  // The module (experts included), the dense partitions and their state; the optimizer's state
  // is replaced, so the experts' comes after.
  dense_->load_checkpoint(load);
  loss_scaler() = dense_->loss_scaler();
  if (load.module_only) {
    for (auto& e : experts_) e.zero->refresh_partitions_from_parameters();
    return;
  }
  if (load.expert_optimizer == nullptr || !load.expert_optimizer->isGenericDict()) {
    throw CheckpointError(load.file + ": no optimizer state for the experts (their expp_rank files)");
  }
  const auto where = load.file + ": the experts' optimizer state";
  const auto dict = load.expert_optimizer->toGenericDict();
  const auto torch_dict = checkpoint::dict_at(dict, "optimizer_state_dict", where).toGenericDict();
  const auto state = checkpoint::dict_at(torch_dict, "state", where).toGenericDict();
  const auto flat = checkpoint::dict_at(dict, "fp32_groups_flat", where).toListRef();
  std::vector<ZeroOptimizer::WholeParameterStates> whole(experts_.size());
  for (size_t e = 0; e < experts_.size(); ++e) {
    whole[e].masters.resize(experts_[e].zero->parameters().size());
    whole[e].state.resize(experts_[e].zero->parameters().size());
  }
  std::vector<int64_t> offset(flat.size(), 0);
  int64_t index = 0;
  for (const auto& t : expert_tensors()) {
    const auto& p = experts_[t.part].zero->parameters()[t.index];
    if (t.group >= flat.size() || offset[t.group] + p.numel() > flat[t.group].toTensor().numel()) {
      throw CheckpointError(fmt::format("{}: fp32_groups_flat[{}] is shorter than the experts of this group", where,
                                        t.group));
    }
    whole[t.part].masters[t.index] = flat[t.group].toTensor().narrow(0, offset[t.group], p.numel());
    offset[t.group] += p.numel();
    if (state.contains(index)) {
      for (const auto& kv : state.at(index).toGenericDict()) {
        const auto& v = kv.value();
        whole[t.part].state[t.index][kv.key().toStringRef()] =
            v.isTensor() ? v.toTensor() : torch::full({}, v.isInt() ? static_cast<double>(v.toInt()) : v.toDouble());
      }
    }
    ++index;
  }
  for (size_t e = 0; e < experts_.size(); ++e) {
    experts_[e].zero->load_whole_parameter_states(whole[e], load.load_optimizer_states);
  }
}

void MoeZeroOptimizer::begin_step() {
  dense_->begin_step();
  for (auto& e : experts_) e.zero->begin_step();
}

// Each part agrees over its own group; the expert parts' groups hold only some of the
// data-parallel ranks, so the verdict is agreed over the data-parallel group once more.
OptimizerWrapper::GradientVerdict MoeZeroOptimizer::check_gradients(bool /*norm_wanted*/) {
  auto v = dense_->check_gradients(false);
  for (auto& e : experts_) {
    const auto x = e.zero->check_gradients(false);
    v.overflow = v.overflow || x.overflow;
    v.nonfinite = v.nonfinite || x.nonfinite;
  }
  auto flags = torch::tensor({v.overflow ? 1.0f : 0.0f, v.nonfinite ? 1.0f : 0.0f},
                             torch::TensorOptions().dtype(torch::kFloat32).device(group_->device()));
  group_->all_reduce(flags, comm::ReduceOp::Max);
  const auto agreed = flags.cpu();
  GradientVerdict out;
  out.overflow = agreed[0].item<float>() > 0.0f;
  out.nonfinite = agreed[1].item<float>() > 0.0f;
  return out;
}

// The dense partitions summed over the data-parallel group; each expert part's over its
// expert-data-parallel group (the experts this rank's expert-parallel position holds), then over
// the expert-parallel group (the other experts): every element once.
torch::Tensor MoeZeroOptimizer::global_squared_norm() {
  auto sq = dense_->partition_squared_norm();
  for (auto& e : experts_) {
    auto x = e.zero->partition_squared_norm().to(group_->device()).reshape({1});
    if (e.expert_parallel->size() > 1) e.expert_parallel->all_reduce(x);
    sq = sq + x.reshape({}).to(sq.device());
  }
  model_parallel_.sum(sq);
  return sq;
}

void MoeZeroOptimizer::update(const torch::Tensor& grad_scale) {
  std::vector<torch::Tensor> grads(optimizer_->param_groups().size()), copies;
  dense_->step_inputs(grads, copies);
  for (auto& e : experts_) e.zero->step_inputs(grads, copies);
  optimizer_->step_from(grads, grad_scale, copies);
  dense_->after_update();
  for (auto& e : experts_) e.zero->after_update();
}

void MoeZeroOptimizer::write_model_copies() {
  dense_->write_model_copies();
  for (auto& e : experts_) e.zero->write_model_copies();
}

}  // namespace deepspeed
