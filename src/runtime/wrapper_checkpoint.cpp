#include "runtime/wrapper_checkpoint.h"

#include <torch/torch.h>

#include <deepspeed/errors.h>
#include <deepspeed/version.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/optimizer_state.h"
#include "checkpoint/zero_partition_layout.h"
#include "partitioning/partition_resharding.h"

namespace deepspeed {
namespace {

using checkpoint::dict_at;
using checkpoint::int_list;
using checkpoint::make_list;
using checkpoint::make_string_dict;
using checkpoint::tensor_for_file;

c10::IValue scaler_entry(const LossScaler& scaler) { return checkpoint::to_ivalue(scaler.state_dict()); }

void load_scaler(LossScaler& scaler, const c10::IValue& value, const std::string& where) {
  scaler.load_state_dict(checkpoint::to_json(value, where), where);
}

std::vector<torch::Tensor> tensor_list(const c10::IValue& v, const std::string& where) {
  if (!v.isList() && !v.isTensorList()) throw CheckpointError(where + " should be a list of tensors");
  std::vector<torch::Tensor> out;
  for (const auto& e : v.toListRef()) {
    if (!e.isTensor()) throw CheckpointError(where + " should be a list of tensors");
    out.push_back(e.toTensor());
  }
  return out;
}

}  // namespace

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
  d.insert("loss_scaler", scaler_entry(scaler));
  d.insert("optimizer_state_dict", base);
  auto flat = make_list();
  for (const auto& g : optimizer.param_groups()) {
    std::vector<torch::Tensor> parts;
    for (const auto& p : g.params) parts.push_back(p.detach().reshape(-1));
    flat.push_back(parts.empty() ? torch::zeros({0}) : tensor_for_file(torch::cat(parts)));
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
  if (d.contains("loss_scaler")) load_scaler(wrapper.loss_scaler(), d.at("loss_scaler"), where + ".loss_scaler");
  if (wrapper.masters().empty()) return;  // an fp16 checkpoint into an fp32 run: weights come from the module
  const auto flat = tensor_list(dict_at(d, "fp32_groups_flat", where), where + ".fp32_groups_flat");
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

c10::impl::GenericDict zero_optim_states(const ZeroOptimizer& wrapper, const Optimizer& optimizer,
                                         const DeepSpeedConfig& config, const std::vector<std::string>& names) {
  auto inner = make_string_dict();
  inner.insert("loss_scaler", scaler_entry(wrapper.loss_scaler()));
  inner.insert("dynamic_loss_scale", wrapper.loss_scaler().dynamic());
  inner.insert("overflow", false);
  inner.insert("clip_grad", config.gradient_clipping);
  inner.insert("base_optimizer_state", checkpoint::optimizer_state_dict(optimizer));
  auto partitions = make_list();
  for (const auto& p : wrapper.partitions()) partitions.push_back(tensor_for_file(p));
  inner.insert("single_partition_of_fp32_groups", partitions);
  inner.insert("zero_stage", static_cast<int64_t>(wrapper.stage()));
  inner.insert("partition_count", static_cast<int64_t>(wrapper.plan().partitions));
  c10::List<int64_t> paddings;
  for (size_t g = 0; g < wrapper.plan().group_size.size(); ++g) {
    int64_t used = 0;
    for (size_t i = 0; i < wrapper.parameters().size(); ++i) {
      if (wrapper.parameter_groups()[i] == static_cast<int64_t>(g)) used += wrapper.parameters()[i].numel();
    }
    paddings.push_back(wrapper.plan().group_size[g] - used);
  }
  inner.insert("group_paddings", paddings);
  inner.insert("ds_version", std::string(DEEPSPEED_VERSION));
  checkpoint::ZeroPartitionLayout layout;
  for (const auto& p : wrapper.parameters()) layout.numels.push_back(p.numel());
  layout.groups = wrapper.parameter_groups();
  layout.names = names;
  layout.bucket_elements = wrapper.bucket_elements();
  layout.classes = wrapper.parameter_classes();
  inner.insert("ds_cpp_layout", checkpoint::to_ivalue(layout));

  auto out = make_string_dict();
  out.insert("optimizer_state_dict", inner);
  out.insert("ds_config", checkpoint::to_ivalue(config.raw));
  out.insert("ds_version", std::string(DEEPSPEED_VERSION));
  return out;
}

void load_zero_optim_states(ZeroOptimizer& wrapper, Optimizer& optimizer,
                            const std::vector<c10::impl::GenericDict>& files, const std::vector<std::string>& names,
                            bool load_optimizer_states) {
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
    const auto list = tensor_list(dict_at(inner[r], "single_partition_of_fp32_groups", names[r]), where);
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
    load_scaler(wrapper.loss_scaler(), dict_at(inner[0], "loss_scaler", f0), f0 + ": loss_scaler");
  }
  wrapper.load_partitions(masters);
}

}  // namespace deepspeed
