// Finds each wanted parameter's per-tensor state (and fp32 master) in the saved stage that
// held it, renumbers the states in the wanted order, and keeps the rest of the entry (group
// hyper-parameters, loss-scale keys) from the first saved stage. Under ZeRO the same by name,
// from each saved stage's partitions put back together.
#include "checkpoint/pipeline_restaging.h"

#include <map>

#include <fmt/format.h>

#include <deepspeed/errors.h>

#include "checkpoint/deepspeed_zero_layout.h"
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

namespace {

// One parameter of a saved ZeRO stage: its group, shape, fp32 master and per-element state.
struct ZeroParameter {
  size_t group = 0;
  std::vector<int64_t> shape;
  torch::Tensor master;
  std::map<std::string, torch::Tensor> per_element;
};

c10::impl::GenericDict inner_dict(const c10::impl::GenericDict& file, const std::string& name) {
  return as_dict(dict_at(file, "optimizer_state_dict", name), name + ": optimizer_state_dict");
}

}  // namespace

RestagedZeroState restage_zero_state(const std::vector<SavedStageZeroState>& saved,
                                     const std::vector<std::string>& wanted, bool with_optimizer_state) {
  if (saved.empty() || saved.front().optim_states.empty()) throw CheckpointError("restage_zero_state: no saved stage");
  std::map<std::string, ZeroParameter> by_name;
  std::vector<std::map<std::string, c10::IValue>> scalars;  // [group]: the first stage's that stepped
  std::vector<bool> stepped;
  for (const auto& stage : saved) {
    std::vector<c10::impl::GenericDict> inner;
    for (size_t r = 0; r < stage.optim_states.size(); ++r) inner.push_back(inner_dict(stage.optim_states[r], stage.files[r]));
    if (inner.front().contains("ds_cpp_layout")) {
      throw CheckpointError(stage.files.front() + ": a ZeRO layout of deepspeed-cpp's own (ds_cpp_layout) does not "
                                                  "load into another pipeline layout; load it with the stages it was "
                                                  "saved with and save it again");
    }
    const auto groups = read_zero_groups(inner, stage.files, stage.param_shapes, with_optimizer_state);
    if (groups.size() > scalars.size()) {
      scalars.resize(groups.size());
      stepped.resize(groups.size(), false);
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      const auto& group = groups[g];
      if (group.has_optimizer_state && !stepped[g]) {
        stepped[g] = true;
        scalars[g] = group.scalars;
      }
      for (size_t k = 0; k < group.names.size(); ++k) {
        if (by_name.count(group.names[k])) continue;  // a tied weight: the first stage's copy
        ZeroParameter p{g, group.shapes[k], group.masters[k], {}};
        for (const auto& [key, per_param] : group.per_element) p.per_element[key] = per_param[k];
        by_name.emplace(group.names[k], std::move(p));
      }
    }
  }

  // Each group's wanted parameters, flattened one after the other as a rank of one holds them.
  const auto group_count = scalars.size();
  std::vector<std::vector<const ZeroParameter*>> members(group_count);
  auto shapes = make_list();
  std::vector<c10::impl::GenericDict> shape_dicts;
  for (size_t g = 0; g < group_count; ++g) shape_dicts.push_back(make_string_dict());
  for (const auto& name : wanted) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      throw CheckpointError(fmt::format("the checkpoint's ZeRO optimizer state has no parameter '{}' (saved stages: {})",
                                        name, saved.size()));
    }
    members[it->second.group].push_back(&it->second);
    shape_dicts[it->second.group].insert(name, c10::List<int64_t>(it->second.shape));
  }
  for (const auto& d : shape_dicts) shapes.push_back(d);
  auto flat = [](const std::vector<torch::Tensor>& parts) {
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : parts) flat_parts.push_back(t.reshape(-1));
    return flat_parts.empty() ? torch::zeros({0}) : torch::cat(flat_parts);
  };

  const auto& first_file = saved.front().files.front();
  const auto first = inner_dict(saved.front().optim_states.front(), first_file);
  auto masters = make_list();
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  for (size_t g = 0; g < group_count; ++g) {
    std::vector<torch::Tensor> parts;
    for (const auto* p : members[g]) parts.push_back(p->master);
    masters.push_back(flat(parts));
    if (!with_optimizer_state || !stepped[g]) continue;
    auto entry = make_string_dict();
    for (const auto& [key, value] : scalars[g]) entry.insert(key, value);
    if (!members[g].empty()) {
      for (const auto& kv : members[g].front()->per_element) {
        std::vector<torch::Tensor> values;
        for (const auto* p : members[g]) values.push_back(p->per_element.at(kv.first));
        // A rank of one keeps its optimizer state with the group's padding.
        entry.insert(kv.first, zero12_partition(flat(values), 1, 0));
      }
    }
    state.insert(static_cast<int64_t>(g), entry);
  }
  auto inner = first.copy();
  inner.insert_or_assign("partition_count", int64_t{1});
  inner.insert_or_assign("single_partition_of_fp32_groups", masters);
  c10::List<int64_t> paddings;
  for (size_t g = 0; g < group_count; ++g) paddings.push_back(0);
  inner.insert_or_assign("group_paddings", paddings);
  static_cast<void>(inner.erase("param_slice_mappings"));  // they describe the saved partitions
  if (with_optimizer_state) {
    const auto saved_base = as_dict(dict_at(first, "base_optimizer_state", first_file), first_file + ": base_optimizer_state");
    auto base = make_string_dict();
    base.insert("state", state);
    base.insert("param_groups", dict_at(saved_base, "param_groups", first_file + ": base_optimizer_state"));
    inner.insert_or_assign("base_optimizer_state", base);
  }
  auto file = make_string_dict();
  file.insert("optimizer_state_dict", inner);
  return {shapes, file};
}

}  // namespace deepspeed::checkpoint
