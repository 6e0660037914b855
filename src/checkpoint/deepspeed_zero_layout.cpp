#include "checkpoint/deepspeed_zero_layout.h"

#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed::checkpoint {

int64_t zero12_partition_size(int64_t numel, int64_t world) {
  const int64_t align = 2 * world;  // DeepSpeed's nccl_start_alignment_factor (2) times N
  return (numel + align - 1) / align * align / world;
}

int64_t zero12_padding(int64_t numel, int64_t world, int64_t rank) {
  const int64_t size = zero12_partition_size(numel, world);
  const int64_t left = rank * size;
  if (numel <= left) return size;
  return std::max<int64_t>(0, left + size - numel);
}

torch::Tensor zero12_partition(const torch::Tensor& flat, int64_t world, int64_t rank) {
  const int64_t numel = flat.numel();
  const int64_t size = zero12_partition_size(numel, world);
  auto out = torch::zeros({size}, flat.options());
  const int64_t begin = std::min(rank * size, numel);
  const int64_t n = std::min(size, numel - begin);
  if (n > 0) out.narrow(0, 0, n).copy_(flat.narrow(0, begin, n));
  return out;
}

torch::Tensor zero12_flat(const std::vector<torch::Tensor>& slices, int64_t numel, const std::string& where) {
  std::vector<torch::Tensor> flat;
  for (const auto& s : slices) flat.push_back(s.reshape(-1));
  auto all = flat.empty() ? torch::zeros({0}) : torch::cat(flat);
  if (all.numel() < numel) {
    throw CheckpointError(where + ": the ranks' partitions hold " + std::to_string(all.numel()) + " elements; its " +
                          "parameters have " + std::to_string(numel));
  }
  return all.narrow(0, 0, numel);
}

int64_t zero3_partition_numel(int64_t numel, int64_t world) { return (numel + world - 1) / world; }

torch::Tensor zero3_partition(const std::vector<torch::Tensor>& params, int64_t world, int64_t rank) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : params) {
    const auto flat = p.reshape(-1);
    const int64_t size = zero3_partition_numel(flat.numel(), world);
    auto part = torch::zeros({size}, flat.options());
    const int64_t begin = std::min(rank * size, flat.numel());
    const int64_t n = std::min(size, flat.numel() - begin);
    if (n > 0) part.narrow(0, 0, n).copy_(flat.narrow(0, begin, n));
    parts.push_back(part);
  }
  return parts.empty() ? torch::zeros({0}) : torch::cat(parts);
}

std::vector<torch::Tensor> zero3_params(const std::vector<torch::Tensor>& flat_groups, const std::vector<int64_t>& numels,
                                        const std::string& where) {
  const auto world = static_cast<int64_t>(flat_groups.size());
  int64_t expected = 0;
  for (const auto n : numels) expected += zero3_partition_numel(n, world);
  for (size_t r = 0; r < flat_groups.size(); ++r) {
    if (flat_groups[r].numel() != expected) {
      throw CheckpointError(where + ": rank " + std::to_string(r) + "'s flat group has " +
                            std::to_string(flat_groups[r].numel()) + " elements; its parameters' partitions on " +
                            std::to_string(world) + " ranks have " + std::to_string(expected));
    }
  }
  std::vector<torch::Tensor> out;
  int64_t offset = 0;
  for (const auto n : numels) {
    const int64_t size = zero3_partition_numel(n, world);
    std::vector<torch::Tensor> parts;
    for (const auto& g : flat_groups) parts.push_back(g.reshape(-1).narrow(0, offset, size));
    out.push_back(torch::cat(parts).narrow(0, 0, n));
    offset += size;
  }
  return out;
}

std::vector<std::vector<std::pair<std::string, std::vector<int64_t>>>> read_param_shapes(const c10::IValue& value,
                                                                                          const std::string& file) {
  if (!value.isList()) throw CheckpointError(file + ": param_shapes should be a list of dicts, found " + value.tagKind());
  std::vector<std::vector<std::pair<std::string, std::vector<int64_t>>>> out;
  for (const auto& g : value.toListRef()) {
    if (!g.isGenericDict()) throw CheckpointError(file + ": param_shapes holds a " + g.tagKind() + ", not a dict");
    auto& group = out.emplace_back();
    for (const auto& kv : g.toGenericDict()) {
      if (!kv.key().isString()) throw CheckpointError(file + ": param_shapes has a key that is not a name");
      const auto& name = kv.key().toStringRef();
      group.emplace_back(name, int_list(kv.value(), file + ": param_shapes['" + name + "']"));
    }
  }
  return out;
}

namespace {

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const auto d : shape) n *= d;
  return n;
}

std::vector<torch::Tensor> tensors_at(const c10::impl::GenericDict& d, const std::string& key, const std::string& file) {
  const auto v = dict_at(d, key, file + ": optimizer_state_dict");
  if (!v.isList()) throw CheckpointError(file + ": " + key + " should be a list of tensors");
  std::vector<torch::Tensor> out;
  for (const auto& e : v.toListRef()) {
    if (!e.isTensor()) throw CheckpointError(file + ": " + key + " should be a list of tensors");
    out.push_back(e.toTensor().reshape(-1));
  }
  return out;
}

}  // namespace

std::vector<ZeroGroupContents> read_zero_groups(const std::vector<c10::impl::GenericDict>& dicts,
                                                const std::vector<std::string>& files, const c10::IValue& param_shapes,
                                                bool with_optimizer_state) {
  const auto world = static_cast<int64_t>(dicts.size());
  const auto& f0 = files.at(0);
  const int64_t stage = int_at(dicts[0], "zero_stage", f0 + ": optimizer_state_dict");
  const auto shapes = read_param_shapes(param_shapes, f0);
  // Stage 3's flat groups and its optimizer's state dict have names of their own.
  const std::string flat_key = stage == 3 ? "fp32_flat_groups" : "single_partition_of_fp32_groups";
  const std::string base_key = stage == 3 ? "optimizer_state_dict" : "base_optimizer_state";
  std::vector<std::vector<torch::Tensor>> flats;  // [rank][group]
  for (int64_t r = 0; r < world; ++r) {
    const int64_t count = int_at(dicts[r], "partition_count", files[r] + ": optimizer_state_dict");
    if (count != world) {
      throw CheckpointError(files[r] + ": partition_count is " + std::to_string(count) + " but " +
                            std::to_string(world) + " optimizer-state files were saved");
    }
    flats.push_back(tensors_at(dicts[r], flat_key, files[r]));
    if (flats.back().size() != shapes.size()) {
      throw CheckpointError(files[r] + ": " + flat_key + " has " + std::to_string(flats.back().size()) +
                            " groups; param_shapes has " + std::to_string(shapes.size()));
    }
  }
  std::vector<c10::impl::GenericDict> states;  // [rank]: the base optimizer's "state"
  if (with_optimizer_state) {
    for (int64_t r = 0; r < world; ++r) {
      const auto base = dict_at(dicts[r], base_key, files[r] + ": optimizer_state_dict");
      if (!base.isGenericDict()) {
        throw CheckpointError(files[r] + ": " + base_key + " is not a state dict (an elastic checkpoint? those are " +
                              "not supported)");
      }
      const auto st = dict_at(base.toGenericDict(), "state", files[r] + ": " + base_key);
      if (!st.isGenericDict()) throw CheckpointError(files[r] + ": " + base_key + ".state is not a dict");
      states.push_back(st.toGenericDict());
    }
  }
  // Cuts one group's per-rank flat tensors into its parameters.
  auto split = [&](int64_t g, const std::vector<torch::Tensor>& per_rank, const std::string& where) {
    std::vector<int64_t> numels;
    for (const auto& [name, shape] : shapes[g]) numels.push_back(product(shape));
    if (stage == 3) return zero3_params(per_rank, numels, where);
    int64_t total = 0;
    for (const auto n : numels) total += n;
    const auto flat = zero12_flat(per_rank, total, where);
    std::vector<torch::Tensor> out;
    int64_t offset = 0;
    for (const auto n : numels) {
      out.push_back(flat.narrow(0, offset, n));
      offset += n;
    }
    return out;
  };
  std::vector<ZeroGroupContents> out(shapes.size());
  for (size_t g = 0; g < shapes.size(); ++g) {
    auto& group = out[g];
    for (const auto& [name, shape] : shapes[g]) {
      group.names.push_back(name);
      group.shapes.push_back(shape);
    }
    std::vector<torch::Tensor> per_rank;
    for (int64_t r = 0; r < world; ++r) per_rank.push_back(flats[r][g].to(torch::kFloat32));
    group.masters = split(static_cast<int64_t>(g), per_rank, f0 + ": " + flat_key + "[" + std::to_string(g) + "]");
    if (!with_optimizer_state) continue;
    const c10::IValue key(static_cast<int64_t>(g));
    if (!states[0].contains(key)) continue;  // never stepped
    group.has_optimizer_state = true;
    // Per-element state has the size of a rank's padded share of the group (stage 1/2: the
    // slice with its padding; stage 3: the flat group); the rest (step) is the same everywhere.
    int64_t state_numel = 0, total = 0;
    for (const auto& [name, shape] : shapes[g]) {
      total += product(shape);
      state_numel += zero3_partition_numel(product(shape), world);
    }
    if (stage != 3) state_numel = zero12_partition_size(total, world);
    for (const auto& kv : states[0].at(key).toGenericDict()) {
      const auto& name = kv.key().toStringRef();
      const auto& v0 = kv.value();
      if (v0.isTensor() && v0.toTensor().dim() == 1 && v0.toTensor().numel() == state_numel && state_numel > 1) {
        std::vector<torch::Tensor> parts;
        for (int64_t r = 0; r < world; ++r) {
          const auto entry = states[r].contains(key) ? states[r].at(key).toGenericDict()
                                                     : c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get());
          if (!entry.contains(name) || !entry.at(name).isTensor() || entry.at(name).toTensor().numel() != state_numel) {
            throw CheckpointError(files[r] + ": the optimizer state of group " + std::to_string(g) + " has no '" +
                                  name + "' of " + std::to_string(state_numel) + " elements");
          }
          parts.push_back(entry.at(name).toTensor().reshape(-1));
        }
        group.per_element[name] = split(static_cast<int64_t>(g), parts, files[0] + ": optimizer state '" + name + "'");
      } else {
        group.scalars[name] = v0;
      }
    }
  }
  return out;
}

}  // namespace deepspeed::checkpoint
