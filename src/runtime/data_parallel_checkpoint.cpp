// DataParallelOptimizer's part of a checkpoint: the model states' "optimizer" entry. With
// fp16/bf16 it is FP16_Optimizer's state_dict (the loss-scale keys, the base optimizer's state
// as "optimizer_state_dict", the fp32 masters flattened per group as "fp32_groups_flat",
// "clip_grad"); in fp32 the optimizer's own state dict. Either loads into either.
#include "runtime/data_parallel_optimizer.h"

#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/model_states.h"
#include "checkpoint/module_state.h"
#include "checkpoint/optimizer_state.h"
#include "runtime/step/flat_tensors.h"
#include "runtime/step/loss_scaler_checkpoint.h"

namespace deepspeed {
namespace {

using checkpoint::dict_at;
using checkpoint::make_list;
using checkpoint::make_string_dict;
using checkpoint::tensor_for_file;

c10::IValue stage0_optimizer_state(const DataParallelOptimizer& wrapper, const Optimizer& optimizer,
                                   double clip_grad) {
  const auto base = checkpoint::optimizer_state_dict(optimizer);
  if (wrapper.masters().empty()) return base;
  const auto& scaler = wrapper.loss_scaler();
  auto d = make_string_dict();
  d.insert("dynamic_loss_scale", scaler.dynamic());
  d.insert("cur_scale", scaler.scale());
  d.insert("cur_iter", scaler.cur_iter());
  d.insert("last_overflow_iter", scaler.last_overflow_iter());
  d.insert("scale_factor", scaler.options().scale_factor);
  d.insert("scale_window", scaler.options().scale_window);
  d.insert("loss_scaler", loss_scaler_dict(scaler));
  d.insert("optimizer_state_dict", base);
  auto flat = make_list();
  for (const auto& g : optimizer.param_groups()) {
    std::vector<torch::Tensor> parts;
    for (const auto& p : g.params) parts.push_back(p.detach().reshape(-1));
    flat.push_back(parts.empty() ? torch::zeros({0}) : tensor_for_file(flatten_tensors(parts)));
  }
  d.insert("fp32_groups_flat", flat);
  d.insert("clip_grad", clip_grad);
  return d;
}

void load_stage0_optimizer_state(DataParallelOptimizer& wrapper, Optimizer& optimizer, const c10::IValue& state,
                                 const std::string& file) {
  const std::string where = file + ": optimizer";
  const bool wrapped = state.isGenericDict() && state.toGenericDict().contains("optimizer_state_dict");
  if (!wrapped) {
    checkpoint::load_optimizer_state(optimizer, state, file);
    return;  // masters (if any) stay as made from the loaded module weights
  }
  const auto d = state.toGenericDict();
  checkpoint::load_optimizer_state(optimizer, dict_at(d, "optimizer_state_dict", where), file);
  if (d.contains("loss_scaler")) load_loss_scaler(wrapper.loss_scaler(), d.at("loss_scaler"), where + ".loss_scaler");
  if (wrapper.masters().empty()) return;  // an fp16 checkpoint into an fp32 run: weights come from the module
  const auto flat = checkpoint::tensor_list(dict_at(d, "fp32_groups_flat", where), where + ".fp32_groups_flat");
  auto& groups = optimizer.param_groups();
  if (flat.size() != groups.size()) {
    throw CheckpointError(where + ".fp32_groups_flat has " + std::to_string(flat.size()) + " groups; this optimizer has " +
                          std::to_string(groups.size()));
  }
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < groups.size(); ++g) {
    int64_t total = 0;
    for (const auto& p : groups[g].params) total += p.numel();
    if (flat[g].numel() != total) {
      throw CheckpointError(where + ".fp32_groups_flat[" + std::to_string(g) + "] has " +
                            std::to_string(flat[g].numel()) + " elements; the group has " + std::to_string(total));
    }
    int64_t offset = 0;
    for (auto& p : groups[g].params) {
      p.detach().copy_(flat[g].narrow(0, offset, p.numel()).view(p.sizes()));
      offset += p.numel();
    }
  }
  wrapper.copy_masters_to_parameters();
}

}  // namespace

void DataParallelOptimizer::add_to_model_states(checkpoint::ModelStates& states, const torch::nn::Module& /*module*/,
                                                const DeepSpeedConfig& config) const {
  if (optimizer_) states.optimizer = stage0_optimizer_state(*this, *optimizer_, config.gradient_clipping);
}

std::vector<torch::Tensor> DataParallelOptimizer::optimizer_tensor_parameters() const {
  std::vector<torch::Tensor> out;
  for (int64_t i : optimizer_order_) out.push_back(i < 0 ? torch::Tensor() : parameters_[static_cast<size_t>(i)]);
  return out;
}

void DataParallelOptimizer::load_checkpoint(const CheckpointLoad& load) {
  const auto module = dict_at(load.model_states, "module", load.file);
  if (!module.isGenericDict()) throw CheckpointError(load.file + ": 'module' is not a state dict");
  checkpoint::load_module_state(load.module, module.toGenericDict(), load.strict, load.file);
  zero_grad();
  // The masters start from the loaded weights; a saved FP16_Optimizer state replaces them.
  refresh_masters_from_parameters();
  if (load.module_only || !load.load_optimizer_states || !optimizer_) return;
  load_stage0_optimizer_state(*this, *optimizer_, dict_at(load.model_states, "optimizer", load.file), load.file);
}

}  // namespace deepspeed
