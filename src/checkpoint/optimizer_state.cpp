#include "checkpoint/optimizer_state.h"

#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed::checkpoint {
namespace {

double number(const c10::IValue& v, const std::string& where) {
  if (v.isDouble()) return v.toDouble();
  if (v.isInt()) return static_cast<double>(v.toInt());
  if (v.isBool()) return v.toBool() ? 1.0 : 0.0;
  throw CheckpointError(where + " should be a number, found " + v.tagKind());
}

}  // namespace

c10::IValue optimizer_state_dict(const Optimizer& optimizer) {
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  const auto& per_tensor = optimizer.state();
  for (size_t i = 0; i < per_tensor.size(); ++i) {
    if (per_tensor[i].empty()) continue;  // torch leaves tensors that never stepped out
    auto entry = make_string_dict();
    for (const auto& [key, t] : per_tensor[i]) entry.insert(key, tensor_for_file(t));
    state.insert(static_cast<int64_t>(i), entry);
  }
  auto groups = make_list();
  int64_t index = 0;
  for (const auto& g : optimizer.param_groups()) {
    auto d = make_string_dict();
    d.insert("lr", g.lr);
    if (optimizer.has_betas()) d.insert("betas", c10::ivalue::Tuple::create({g.betas[0], g.betas[1]}));
    d.insert("eps", g.eps);
    d.insert("weight_decay", g.weight_decay);
    if (optimizer.uses_momentum()) d.insert("momentum", g.momentum);
    for (const auto& [key, value] : g.extra) d.insert(key, value);
    c10::List<int64_t> params;
    for (size_t k = 0; k < g.params.size(); ++k) params.push_back(index++);
    d.insert("params", params);
    groups.push_back(d);
  }
  auto out = make_string_dict();
  out.insert("state", state);
  out.insert("param_groups", groups);
  return out;
}

void load_optimizer_state(Optimizer& optimizer, const c10::IValue& value, const std::string& file) {
  const std::string where = file + ": optimizer";
  if (!value.isGenericDict()) {
    throw CheckpointError(where + " state is " + value.tagKind() + ", not a state dict (saved without an optimizer?)");
  }
  const auto dict = value.toGenericDict();
  const auto groups_value = dict_at(dict, "param_groups", where);
  const auto state_value = dict_at(dict, "state", where);
  if (!groups_value.isList() || !state_value.isGenericDict()) {
    throw CheckpointError(where + " state dict has an unexpected layout");
  }
  const auto saved_groups = groups_value.toListRef();
  auto& groups = optimizer.param_groups();
  if (saved_groups.size() != groups.size()) {
    throw CheckpointError(where + " has " + std::to_string(saved_groups.size()) +
                          " parameter groups; this optimizer has " + std::to_string(groups.size()));
  }
  // Check the whole layout first, so that a mismatch changes nothing.
  size_t total = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const auto g = saved_groups[gi].toGenericDict();
    const auto n = dict_at(g, "params", where).toListRef().size();
    if (n != groups[gi].params.size()) {
      throw CheckpointError(where + " group " + std::to_string(gi) + " has " + std::to_string(n) +
                            " tensors; this optimizer's has " + std::to_string(groups[gi].params.size()));
    }
    total += n;
  }
  std::vector<std::map<std::string, torch::Tensor>> state(total);
  std::vector<torch::Tensor> params;
  for (const auto& g : groups) params.insert(params.end(), g.params.begin(), g.params.end());
  for (const auto& e : state_value.toGenericDict()) {
    const int64_t i = e.key().toInt();
    if (i < 0 || static_cast<size_t>(i) >= total) {
      throw CheckpointError(where + " has state for tensor " + std::to_string(i) + " of " + std::to_string(total));
    }
    for (const auto& kv : e.value().toGenericDict()) {
      // A number (FusedAdam's step) becomes the 0-dim tensor our optimizers keep.
      const auto& v = kv.value();
      if (!v.isTensor() && !v.isInt() && !v.isDouble()) {
        throw CheckpointError(where + " state '" + kv.key().toStringRef() + "' of tensor " + std::to_string(i) +
                              " is a " + v.tagKind() + ", not a tensor");
      }
      auto t = v.isTensor() ? v.toTensor() : torch::full({}, v.isInt() ? static_cast<double>(v.toInt()) : v.toDouble());
      if (t.dim() > 0 && t.sizes() != params[i].sizes()) {
        throw CheckpointError(where + " state '" + kv.key().toStringRef() + "' of tensor " + std::to_string(i) +
                              " has shape " + c10::str(t.sizes()) + "; the parameter has " +
                              c10::str(params[i].sizes()));
      }
      state[i][kv.key().toStringRef()] = t.to(params[i].device());
    }
  }
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const auto g = saved_groups[gi].toGenericDict();
    auto& dst = groups[gi];
    for (const auto& kv : g) {
      const auto& key = kv.key().toStringRef();
      const std::string at = where + " group " + std::to_string(gi) + " '" + key + "'";
      // Not hyper-parameters: the tensors, a group-wide step (DeepSpeed's FusedAdam keeps
      // one beside the per-tensor one), and settings that are not numbers (torch's foreach: None).
      if (key == "params" || key == "step") continue;
      if (key != "betas" && !kv.value().isDouble() && !kv.value().isInt() && !kv.value().isBool()) continue;
      if (key == "lr") dst.lr = number(kv.value(), at);
      else if (key == "eps") dst.eps = number(kv.value(), at);
      else if (key == "weight_decay") dst.weight_decay = number(kv.value(), at);
      else if (key == "momentum") dst.momentum = number(kv.value(), at);
      else if (key == "betas") {
        const auto b = kv.value().isTuple() ? kv.value().toTupleRef().elements().vec() : kv.value().toListRef().vec();
        if (b.size() != 2) throw CheckpointError(at + " should hold two numbers");
        dst.betas = {number(b[0], at), number(b[1], at)};
      } else {
        dst.extra[key] = number(kv.value(), at);
      }
    }
  }
  optimizer.state() = std::move(state);
  optimizer.state_loaded();
}

}  // namespace deepspeed::checkpoint
