#include "runtime/moe_checkpoint.h"

#include <map>
#include <tuple>

#include <fmt/format.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>
#include <deepspeed/moe.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/layout.h"
#include "checkpoint/module_state.h"
#include "checkpoint/pickle_io.h"

namespace deepspeed {
namespace {

using checkpoint::dict_at;
using checkpoint::make_list;
using checkpoint::make_string_dict;

constexpr const char* kNamesKey = "ds_cpp_parameter_names";
constexpr const char* kNumelsKey = "ds_cpp_parameter_numels";

// The expert number in `name` after `prefix` and the rest of the name ("fc1.weight").
std::optional<std::pair<int64_t, std::string>> split_expert_name(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0) return std::nullopt;
  const auto dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return std::nullopt;
  const auto digits = name.substr(prefix.size(), dot - prefix.size());
  if (digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::make_pair(std::stoll(digits), name.substr(dot));
}

bool file_exists(const checkpoint::CheckpointReader& reader, const std::string& name) {
  return reader.verified() ? reader.manifest().files.count(name) > 0 : std::filesystem::exists(reader.dir() / name);
}

// Each saved tensor of an expp_rank file: where its state is.
struct SavedTensor {
  size_t file;
  size_t group;
  int64_t index;   // torch's numbering over all groups
  int64_t offset;  // in the group's flat fp32 masters
  int64_t numel;
};

std::vector<std::vector<std::string>> string_lists(const c10::IValue& v, const std::string& where) {
  std::vector<std::vector<std::string>> out;
  if (!v.isList()) throw CheckpointError(where + " is not a list of lists");
  for (const auto& group : v.toListRef()) {
    if (!group.isList()) throw CheckpointError(where + " is not a list of lists");
    auto& names = out.emplace_back();
    for (const auto& n : group.toListRef()) names.push_back(n.toStringRef());
  }
  return out;
}

std::vector<std::vector<int64_t>> int_lists(const c10::IValue& v, const std::string& where) {
  std::vector<std::vector<int64_t>> out;
  if (!v.isList()) throw CheckpointError(where + " is not a list of lists");
  for (const auto& group : v.toListRef()) {
    if (!group.isList()) throw CheckpointError(where + " is not a list of lists");
    auto& numbers = out.emplace_back();
    for (const auto& n : group.toListRef()) numbers.push_back(n.toInt());
  }
  return out;
}

}  // namespace

std::vector<MoeLayerPlacement> moe_layer_placements(const torch::nn::Module& module, Groups& groups) {
  std::vector<MoeLayerPlacement> out;
  for (const auto& item : module.named_modules()) {
    const auto* layer = item.value()->as<moe::MoEImpl>();
    if (!layer) continue;
    const int64_t ep = layer->options().ep_size;
    MoeLayerPlacement p;
    p.experts_prefix = (item.key().empty() ? "" : item.key() + ".") + "deepspeed_moe.experts.deepspeed_experts.";
    p.num_experts = layer->options().num_experts;
    p.num_local_experts = layer->num_local_experts();
    p.ep_size = ep;
    p.ep_rank = ep > 1 ? groups.expert_parallel(ep)->rank() : 0;
    p.edp_rank = ep > 1 ? groups.expert_data_parallel(ep)->rank() : groups.data_parallel()->rank();
    out.push_back(std::move(p));
  }
  return out;
}

const MoeLayerPlacement& largest_expert_parallel_layer(const std::vector<MoeLayerPlacement>& layers) {
  const auto* largest = &layers.at(0);
  for (const auto& l : layers) {
    if (l.ep_size > largest->ep_size) largest = &l;
  }
  return *largest;
}

std::string global_expert_name(const std::string& name, const std::vector<MoeLayerPlacement>& layers) {
  for (const auto& l : layers) {
    if (auto split = split_expert_name(name, l.experts_prefix)) {
      return l.experts_prefix + std::to_string(l.ep_rank * l.num_local_experts + split->first) + split->second;
    }
  }
  return name;
}

c10::impl::GenericDict without_experts(const c10::impl::GenericDict& module_state) {
  c10::impl::GenericDict out(module_state.keyType(), module_state.valueType());
  for (const auto& e : module_state) {
    if (!moe::is_moe_param_name(e.key().toStringRef())) out.insert(e.key(), e.value());
  }
  return out;
}

std::vector<checkpoint::FileToWrite> expert_files(const torch::nn::Module& module,
                                                  const std::vector<MoeLayerPlacement>& layers, int64_t mp_rank) {
  const auto state = checkpoint::module_state_dict(module);
  std::vector<checkpoint::FileToWrite> files;
  for (size_t layer = 0; layer < layers.size(); ++layer) {
    const auto& l = layers[layer];
    if (l.edp_rank != 0) continue;  // the first rank of each expert-data-parallel group writes
    std::vector<c10::impl::GenericDict> experts;
    for (int64_t i = 0; i < l.num_local_experts; ++i) experts.emplace_back(c10::StringType::get(), c10::TensorType::get());
    for (const auto& e : state) {
      const auto split = split_expert_name(e.key().toStringRef(), l.experts_prefix);
      if (!split || split->first >= l.num_local_experts) continue;
      const int64_t global = l.ep_rank * l.num_local_experts + split->first;
      experts[static_cast<size_t>(split->first)].insert(l.experts_prefix + std::to_string(global) + split->second,
                                                       e.value());
    }
    for (int64_t i = 0; i < l.num_local_experts; ++i) {
      const int64_t global = l.ep_rank * l.num_local_experts + i;
      files.push_back({checkpoint::expert_model_states_file_name(static_cast<int64_t>(layer), global, mp_rank),
                       checkpoint::to_pickle_bytes(experts[static_cast<size_t>(i)])});
    }
  }
  return files;
}

checkpoint::FileToWrite expert_optimizer_file(const c10::IValue& optimizer_state,
                                              const std::vector<std::vector<std::string>>& names,
                                              const std::vector<std::vector<int64_t>>& numels, int64_t ep_rank,
                                              int64_t mp_rank) {
  auto d = make_string_dict();
  d.insert("optimizer", optimizer_state);
  auto name_lists = make_list();
  for (const auto& group : names) {
    c10::List<std::string> l;
    for (const auto& n : group) l.push_back(n);
    name_lists.push_back(l);
  }
  d.insert(kNamesKey, name_lists);
  auto numel_lists = make_list();
  for (const auto& group : numels) numel_lists.push_back(c10::List<int64_t>(group));
  d.insert(kNumelsKey, numel_lists);
  return {checkpoint::expert_optim_states_file_name(ep_rank, mp_rank), checkpoint::to_pickle_bytes(d)};
}

void add_local_experts(c10::impl::GenericDict& module_state, const checkpoint::CheckpointReader& reader,
                       const std::vector<MoeLayerPlacement>& layers, int64_t mp_rank) {
  for (size_t layer = 0; layer < layers.size(); ++layer) {
    const auto& l = layers[layer];
    for (int64_t i = 0; i < l.num_local_experts; ++i) {
      const int64_t global = l.ep_rank * l.num_local_experts + i;
      const auto name = checkpoint::expert_model_states_file_name(static_cast<int64_t>(layer), global, mp_rank);
      if (!file_exists(reader, name)) {
        throw CheckpointError(fmt::format("{}: expert {} of MoE layer {} has no file {} (saved with fewer experts, or "
                                          "without MoE layers?)",
                                          reader.dir().string(), global, layer, name));
      }
      const auto saved = reader.read_dict(name);
      for (const auto& e : saved) {
        const auto split = split_expert_name(e.key().toStringRef(), l.experts_prefix);
        if (!split || split->first != global) {
          throw CheckpointError(fmt::format("{}: '{}' is not a tensor of expert {} under '{}'",
                                            (reader.dir() / name).string(), e.key().toStringRef(), global,
                                            l.experts_prefix));
        }
        module_state.insert_or_assign(l.experts_prefix + std::to_string(i) + split->second, e.value());
      }
    }
  }
}

c10::IValue expert_optimizer_state(const checkpoint::CheckpointReader& reader,
                                   const std::vector<std::vector<std::string>>& names, int64_t ep_rank,
                                   int64_t mp_rank) {
  const auto own = checkpoint::expert_optim_states_file_name(ep_rank, mp_rank);
  if (file_exists(reader, own)) {
    const auto d = reader.read_dict(own);
    // DeepSpeed's files carry no names: the same expert-parallel size is all they can load into.
    if (!d.contains(kNamesKey) || string_lists(d.at(kNamesKey), own) == names) {
      return dict_at(d, "optimizer", (reader.dir() / own).string());
    }
  }
  // Another expert-parallel size: every saved rank's file, each tensor's state found by name.
  std::vector<c10::impl::GenericDict> files;
  std::vector<std::string> file_names;
  for (int64_t r = 0;; ++r) {
    const auto name = checkpoint::expert_optim_states_file_name(r, mp_rank);
    if (!file_exists(reader, name)) break;
    files.push_back(reader.read_dict(name));
    file_names.push_back((reader.dir() / name).string());
    if (!files.back().contains(kNamesKey)) {
      throw CheckpointError(fmt::format("{} has no parameter names ({}), so its optimizer state cannot move to "
                                        "another expert-parallel size; load it with the size it was saved with",
                                        file_names.back(), kNamesKey));
    }
  }
  if (files.empty()) {
    throw CheckpointError(fmt::format("{}: no {} (a checkpoint saved without MoE layers?)",
                                      reader.dir().string(), own));
  }
  std::map<std::string, SavedTensor> where;
  std::vector<c10::IValue> optimizer(files.size());
  for (size_t f = 0; f < files.size(); ++f) {
    optimizer[f] = dict_at(files[f], "optimizer", file_names[f]);
    const auto saved_names = string_lists(files[f].at(kNamesKey), file_names[f] + ": " + kNamesKey);
    const auto saved_numels = int_lists(dict_at(files[f], kNumelsKey, file_names[f]), file_names[f] + ": " + kNumelsKey);
    int64_t index = 0;
    for (size_t g = 0; g < saved_names.size(); ++g) {
      int64_t offset = 0;
      for (size_t j = 0; j < saved_names[g].size(); ++j) {
        const int64_t numel = saved_numels.at(g).at(j);
        where.emplace(saved_names[g][j], SavedTensor{f, g, index++, offset, numel});
        offset += numel;
      }
    }
  }
  const bool wrapped = optimizer[0].isGenericDict() && optimizer[0].toGenericDict().contains("optimizer_state_dict");
  auto torch_state = [&](size_t f) {
    return wrapped ? optimizer[f].toGenericDict().at("optimizer_state_dict").toGenericDict()
                   : optimizer[f].toGenericDict();
  };
  const auto saved_groups = dict_at(torch_state(0), "param_groups", file_names[0]).toListRef();
  if (saved_groups.size() != names.size()) {
    throw CheckpointError(fmt::format("{}: {} optimizer groups; this optimizer has {}", file_names[0],
                                      saved_groups.size(), names.size()));
  }
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  auto groups = make_list();
  std::vector<std::vector<torch::Tensor>> flat_parts(names.size());
  int64_t index = 0;
  for (size_t g = 0; g < names.size(); ++g) {
    auto group = saved_groups[g].toGenericDict().copy();
    c10::List<int64_t> params;
    for (const auto& name : names[g]) {
      const auto it = where.find(name);
      if (it == where.end()) {
        throw CheckpointError(fmt::format("{}: no saved optimizer state for '{}'", reader.dir().string(), name));
      }
      const auto& s = it->second;
      const auto saved_state = dict_at(torch_state(s.file), "state", file_names[s.file]).toGenericDict();
      if (saved_state.contains(s.index)) state.insert(index, saved_state.at(s.index));
      if (wrapped) {
        const auto flat = dict_at(optimizer[s.file].toGenericDict(), "fp32_groups_flat", file_names[s.file]).toListRef();
        flat_parts[g].push_back(flat.at(s.group).toTensor().narrow(0, s.offset, s.numel));
      }
      params.push_back(index++);
    }
    group.insert_or_assign("params", params);
    groups.push_back(group);
  }
  auto torch_dict = make_string_dict();
  torch_dict.insert("state", state);
  torch_dict.insert("param_groups", groups);
  if (!wrapped) return torch_dict;
  auto out = optimizer[0].toGenericDict().copy();
  out.insert_or_assign("optimizer_state_dict", torch_dict);
  auto flat = make_list();
  for (const auto& parts : flat_parts) flat.push_back(parts.empty() ? torch::zeros({0}) : torch::cat(parts));
  out.insert_or_assign("fp32_groups_flat", flat);
  return out;
}

}  // namespace deepspeed
