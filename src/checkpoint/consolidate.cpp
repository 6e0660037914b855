#include "checkpoint/consolidate.h"

#include <functional>
#include <map>
#include <numeric>
#include <stdexcept>

#include <deepspeed/errors.h>

#include "checkpoint/deepspeed_zero_layout.h"
#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/layout.h"
#include "checkpoint/zero_partition_layout.h"
#include "partitioning/bucket_plan.h"
#include "partitioning/partition_resharding.h"

namespace deepspeed::checkpoint {

namespace {

// ZeRO: the fp32 masters of every trainable parameter, reassembled from every rank's shard,
// by module name. `param_shapes`: the model states' entry (DeepSpeed's layout is cut by it).
std::map<std::string, torch::Tensor> zero_fp32_masters(const CheckpointReader& reader, const c10::IValue& param_shapes) {
  const auto& m = reader.manifest();
  std::vector<c10::impl::GenericDict> shards;
  std::vector<std::string> names;
  for (int64_t r = 0; r < m.dp_world_size; ++r) {
    std::string shard = zero_optim_states_file_name(r, 0, false);
    if (!m.files.count(shard)) shard = zero_optim_states_file_name(r, 0, true);
    const auto file = (reader.dir() / shard).string();
    const auto d = reader.read_dict(shard);
    const auto inner = dict_at(d, "optimizer_state_dict", file);
    if (!inner.isGenericDict()) throw CheckpointError(file + ": optimizer_state_dict is not a dict");
    shards.push_back(inner.toGenericDict());
    names.push_back(file);
  }
  std::map<std::string, torch::Tensor> out;
  if (!shards[0].contains("ds_cpp_layout")) {
    for (const auto& group : read_zero_groups(shards, names, param_shapes, /*with_optimizer_state=*/false)) {
      for (size_t k = 0; k < group.names.size(); ++k) out[group.names[k]] = group.masters[k].clone();
    }
    return out;
  }
  // The layout deepspeed-cpp wrote before it wrote DeepSpeed's: partitions cut by its buckets.
  const auto layout = read_zero_partition_layout(shards[0], names[0]);
  const auto& numels = layout.numels;
  const auto& groups = layout.groups;
  if (layout.names.empty()) throw CheckpointError(names[0] + ": ds_cpp_layout.names should name every parameter");
  const auto plan = layout.plan(m.dp_world_size);
  for (int64_t g = 0; g < static_cast<int64_t>(plan.group_size.size()); ++g) {
    std::vector<torch::Tensor> parts;
    for (size_t r = 0; r < shards.size(); ++r) {
      const auto list = dict_at(shards[r], "single_partition_of_fp32_groups", names[r]);
      if (!list.isList() || static_cast<int64_t>(list.toListRef().size()) <= g) {
        throw CheckpointError(names[r] + ": single_partition_of_fp32_groups has no group " + std::to_string(g));
      }
      parts.push_back(list.toListRef()[g].toTensor().reshape(-1).to(torch::kFloat32));
    }
    torch::Tensor flat;
    try {
      flat = assemble_group(plan, g, parts);
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(reader.dir().string() + ": " + e.what());
    }
    // A group's flat space holds its parameters last first.
    int64_t offset = 0;
    for (int64_t i = static_cast<int64_t>(numels.size()) - 1; i >= 0; --i) {
      if (groups[i] != g) continue;
      out[layout.names[i]] = flat.narrow(0, offset, numels[i]).clone();
      offset += numels[i];
    }
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> fp32_state_dict(const CheckpointReader& reader) {
  const auto& m = reader.manifest();
  // ZeRO-3: every rank wrote model states, whose partitioned parameters are empty; their
  // shapes are in param_shapes.
  const bool stage3 = m.zero_stage == 3;
  const auto name = stage3 ? zero_model_states_file_name(0, 0) : model_states_file_name(0);
  const auto file = (reader.dir() / name).string();
  const auto states = reader.read_dict(name);
  auto it = states.find("module");
  if (it == states.end() || !it->value().isGenericDict()) {
    throw CheckpointError("checkpoint file " + file + " has no module state dict");
  }
  const auto shapes_entry = m.zero_stage > 0 ? dict_at(states, "param_shapes", file) : c10::IValue();
  const auto masters = m.zero_stage > 0 ? zero_fp32_masters(reader, shapes_entry) : std::map<std::string, torch::Tensor>{};
  std::map<std::string, std::vector<int64_t>> shapes;
  if (m.zero_stage > 0) {
    for (const auto& group : read_param_shapes(shapes_entry, file)) {
      for (const auto& [pname, shape] : group) shapes[pname] = shape;
    }
  }
  // Stage 3's frozen parameters are cut like its trainable ones, one piece in every rank's
  // model states (an empty tensor in the module entry, as DeepSpeed writes them).
  std::map<std::string, torch::Tensor> frozen;
  if (stage3 && states.contains("frozen_param_shapes") && states.at("frozen_param_shapes").isGenericDict()) {
    for (const auto& kv : states.at("frozen_param_shapes").toGenericDict()) {
      const auto pname = kv.key().toStringRef();
      const auto shape = int_list(kv.value(), file + ": frozen_param_shapes['" + pname + "']");
      std::vector<torch::Tensor> pieces;
      for (int64_t r = 0; r < m.dp_world_size; ++r) {
        const auto rname = zero_model_states_file_name(r, 0);
        const auto rstates = r == 0 ? states : reader.read_dict(rname);
        const auto fragments = dict_at(rstates, "frozen_param_fragments", (reader.dir() / rname).string());
        if (!fragments.isGenericDict() || !fragments.toGenericDict().contains(pname)) {
          throw CheckpointError((reader.dir() / rname).string() + ": frozen_param_fragments has no '" + pname + "'");
        }
        pieces.push_back(fragments.toGenericDict().at(pname).toTensor().reshape(-1));
      }
      const int64_t numel = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
      frozen[pname] = torch::cat(pieces).narrow(0, 0, numel).view(shape);
    }
  }
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& e : it->value().toGenericDict()) {
    auto t = e.value().toTensor();
    const auto& key = e.key().toStringRef();
    if (auto mt = masters.find(key); mt != masters.end()) {
      auto sizes = t.sizes().vec();
      if (auto st = shapes.find(key); st != shapes.end()) sizes = st->second;
      const int64_t numel = std::accumulate(sizes.begin(), sizes.end(), int64_t{1}, std::multiplies<>());
      if (mt->second.numel() != numel) {
        throw CheckpointError(reader.dir().string() + ": the fp32 master of '" + key + "' has " +
                              std::to_string(mt->second.numel()) + " elements, the module's " + std::to_string(numel));
      }
      out.emplace_back(key, mt->second.view(sizes));
      continue;
    }
    if (auto ft = frozen.find(key); ft != frozen.end() && t.numel() != ft->second.numel()) t = ft->second;
    out.emplace_back(key, t.is_floating_point() ? t.to(torch::kFloat32) : t);
  }
  return out;
}

}  // namespace deepspeed::checkpoint
