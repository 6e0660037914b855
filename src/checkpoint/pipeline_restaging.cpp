// Finds each wanted parameter's per-tensor state (and fp32 master) in the saved stage that
// held it, renumbers the states in the wanted order, and keeps the rest of the entry (group
// hyper-parameters, loss-scale keys) from the first saved stage.
#include "checkpoint/pipeline_restaging.h"

#include <map>

#include <fmt/format.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed::checkpoint {
namespace {

struct Found {
  c10::IValue state;     // the per-tensor state dict, or None where the optimizer kept none
  torch::Tensor master;  // fp16/bf16: the fp32 master, flat
};

bool wrapped(const c10::IValue& optimizer) {
  return optimizer.isGenericDict() && optimizer.toGenericDict().contains("optimizer_state_dict");
}

c10::impl::GenericDict as_dict(const c10::IValue& v, const std::string& where) {
  if (!v.isGenericDict()) throw CheckpointError(where + " is not a dict");
  return v.toGenericDict();
}

}  // namespace

c10::IValue to_ivalue(const PipeParameterLayout& layout) {
  auto names = make_list();
  auto numels = make_list();
  for (size_t g = 0; g < layout.names.size(); ++g) {
    auto n = make_list();
    auto e = make_list();
    for (const auto& name : layout.names[g]) n.push_back(name);
    for (const auto numel : layout.numels[g]) e.push_back(numel);
    names.push_back(n);
    numels.push_back(e);
  }
  auto d = make_string_dict();
  d.insert("param_names", names);
  d.insert("param_numels", numels);
  return d;
}

PipeParameterLayout pipe_parameter_layout(const c10::IValue& value, const std::string& where) {
  const auto d = as_dict(value, where);
  PipeParameterLayout out;
  const auto names = dict_at(d, "param_names", where);
  const auto numels = dict_at(d, "param_numels", where);
  if (!names.isList() || !numels.isList() || names.toListRef().size() != numels.toListRef().size()) {
    throw CheckpointError(where + ": param_names and param_numels must be lists of one list per group");
  }
  for (size_t g = 0; g < names.toListRef().size(); ++g) {
    std::vector<std::string> group;
    const auto& list = names.toListRef()[g];
    if (!list.isList()) throw CheckpointError(fmt::format("{}: param_names[{}] is not a list", where, g));
    for (const auto& n : list.toListRef()) group.push_back(n.toStringRef());
    out.names.push_back(group);
    out.numels.push_back(int_list(numels.toListRef()[g], fmt::format("{}: param_numels[{}]", where, g)));
    if (out.names.back().size() != out.numels.back().size()) {
      throw CheckpointError(fmt::format("{}: group {} has {} names and {} sizes", where, g, out.names.back().size(),
                                        out.numels.back().size()));
    }
  }
  return out;
}

c10::IValue restage_optimizer_state(const std::vector<SavedStageOptimizer>& saved, const PipeParameterLayout& wanted) {
  if (saved.empty()) throw CheckpointError("restage_optimizer_state: no saved stage");
  const bool is_wrapped = wrapped(saved.front().optimizer);
  std::map<std::string, Found> by_name;
  for (const auto& stage : saved) {
    const std::string where = stage.file + ": optimizer";
    if (wrapped(stage.optimizer) != is_wrapped) {
      throw CheckpointError(where + ": the saved stages disagree on the optimizer entry's form");
    }
    const auto outer = as_dict(stage.optimizer, where);
    const auto inner = as_dict(is_wrapped ? dict_at(outer, "optimizer_state_dict", where) : stage.optimizer,
                               where + (is_wrapped ? ".optimizer_state_dict" : ""));
    const auto state = as_dict(dict_at(inner, "state", where), where + ".state");
    std::vector<torch::Tensor> flat;
    if (is_wrapped) flat = tensor_list(dict_at(outer, "fp32_groups_flat", where), where + ".fp32_groups_flat");
    int64_t index = 0;
    for (size_t g = 0; g < stage.layout.names.size(); ++g) {
      int64_t offset = 0;
      for (size_t i = 0; i < stage.layout.names[g].size(); ++i, ++index) {
        const auto numel = stage.layout.numels[g][i];
        Found f;
        if (state.contains(index)) f.state = state.at(index);
        if (is_wrapped) {
          if (g >= flat.size() || flat[g].numel() < offset + numel) {
            throw CheckpointError(fmt::format("{}.fp32_groups_flat[{}] is shorter than its parameters", where, g));
          }
          f.master = flat[g].narrow(0, offset, numel);
        }
        offset += numel;
        by_name.emplace(stage.layout.names[g][i], f);  // a tied weight: the first stage's copy
      }
    }
  }

  const std::string first_where = saved.front().file + ": optimizer";
  const auto first_outer = as_dict(saved.front().optimizer, first_where);
  const auto first_inner = as_dict(is_wrapped ? dict_at(first_outer, "optimizer_state_dict", first_where)
                                              : saved.front().optimizer,
                                   first_where);
  const auto first_groups = dict_at(first_inner, "param_groups", first_where);
  if (!first_groups.isList() || first_groups.toListRef().size() != wanted.names.size()) {
    throw CheckpointError(fmt::format("{}: the saved optimizer has {} param groups; this one has {}", first_where,
                                      first_groups.isList() ? first_groups.toListRef().size() : 0,
                                      wanted.names.size()));
  }
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  auto groups = make_list();
  auto flats = make_list();
  int64_t index = 0;
  for (size_t g = 0; g < wanted.names.size(); ++g) {
    auto group = as_dict(first_groups.toListRef()[g], first_where + ".param_groups").copy();
    auto params = make_list();
    std::vector<torch::Tensor> masters;
    for (size_t i = 0; i < wanted.names[g].size(); ++i, ++index) {
      const auto& name = wanted.names[g][i];
      const auto it = by_name.find(name);
      if (it == by_name.end()) {
        throw CheckpointError(fmt::format("the checkpoint's optimizer state has no parameter '{}' (saved stages: {})",
                                          name, saved.size()));
      }
      if (it->second.master.defined() && it->second.master.numel() != wanted.numels[g][i]) {
        throw CheckpointError(fmt::format("parameter '{}' has {} elements in the checkpoint and {} here", name,
                                          it->second.master.numel(), wanted.numels[g][i]));
      }
      if (!it->second.state.isNone()) state.insert(index, it->second.state);
      params.push_back(index);
      if (is_wrapped) masters.push_back(it->second.master.reshape(-1));
    }
    group.insert_or_assign("params", params);
    groups.push_back(group);
    if (is_wrapped) flats.push_back(masters.empty() ? torch::zeros({0}) : torch::cat(masters));
  }
  auto inner = make_string_dict();
  inner.insert("state", state);
  inner.insert("param_groups", groups);
  if (!is_wrapped) return inner;
  auto outer = first_outer.copy();
  outer.insert_or_assign("optimizer_state_dict", inner);
  outer.insert_or_assign("fp32_groups_flat", flats);
  return outer;
}

}  // namespace deepspeed::checkpoint
