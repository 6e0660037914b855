#include "checkpoint/consolidate.h"

#include <functional>
#include <map>
#include <numeric>
#include <stdexcept>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/layout.h"
#include "checkpoint/zero_partition_layout.h"
#include "partitioning/bucket_plan.h"
#include "partitioning/partition_resharding.h"

namespace deepspeed::checkpoint {

namespace {

// ZeRO 1/2: the fp32 masters of every trainable parameter, reassembled from every rank's
// shard (the same flat spaces load_checkpoint reshards), by module name.
std::map<std::string, torch::Tensor> zero_fp32_masters(const CheckpointReader& reader) {
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
  const auto layout = read_zero_partition_layout(shards[0], names[0]);
  const auto& numels = layout.numels;
  const auto& groups = layout.groups;
  if (layout.names.empty()) throw CheckpointError(names[0] + ": ds_cpp_layout.names should name every parameter");
  const auto plan = layout.plan(m.dp_world_size);
  std::map<std::string, torch::Tensor> out;
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
  const auto masters = m.zero_stage > 0 ? zero_fp32_masters(reader) : std::map<std::string, torch::Tensor>{};
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
  std::map<std::string, std::vector<int64_t>> shapes;
  if (stage3) {
    const auto groups = dict_at(states, "param_shapes", file);
    if (!groups.isList()) throw CheckpointError(file + ": param_shapes is not a list");
    for (const auto& g : groups.toListRef()) {
      if (!g.isGenericDict()) throw CheckpointError(file + ": param_shapes holds something other than a dict");
      for (const auto& kv : g.toGenericDict()) {
        shapes[kv.key().toStringRef()] = int_list(kv.value(), file + ": param_shapes." + kv.key().toStringRef());
      }
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
    out.emplace_back(key, t.is_floating_point() ? t.to(torch::kFloat32) : t);
  }
  return out;
}

}  // namespace deepspeed::checkpoint
