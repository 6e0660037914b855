#include "runtime/tensor_parallel_checkpoint.h"

#include <map>
#include <optional>

#include <fmt/format.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/deepspeed_zero_layout.h"
#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/layout.h"
#include "runtime/step/flat_tensors.h"

namespace deepspeed {
namespace {

using checkpoint::dict_at;
using checkpoint::make_list;
using checkpoint::make_string_dict;
using tensor_parallel::SplitParameter;

constexpr const char* kEntry = "ds_cpp_tensor_parallel";

using Splits = std::map<std::string, SplitParameter>;

Splits by_name(const std::vector<SplitParameter>& splits) {
  Splits out;
  for (const auto& s : splits) out.emplace(s.name, s);
  return out;
}

Splits read_splits(const c10::impl::GenericDict& states, const std::string& file) {
  Splits out;
  if (!states.contains(kEntry)) return out;
  const std::string where = file + ": " + kEntry;
  const auto entry = states.at(kEntry);
  if (!entry.isGenericDict()) throw CheckpointError(where + " is not a dict");
  const auto split = dict_at(entry.toGenericDict(), "split", where);
  if (!split.isGenericDict()) throw CheckpointError(where + ".split is not a dict");
  for (const auto& kv : split.toGenericDict()) {
    const auto& name = kv.key().toStringRef();
    if (!kv.value().isGenericDict()) throw CheckpointError(where + ".split['" + name + "'] is not a dict");
    const auto d = kv.value().toGenericDict();
    out.emplace(name, SplitParameter{name, checkpoint::int_at(d, "dim", where + ".split['" + name + "']"),
                                     checkpoint::int_list(dict_at(d, "sub_sizes", where), where + ".split['" + name +
                                                                                                  "'].sub_sizes")});
  }
  return out;
}

// Puts saved parts together and cuts this rank's part: one parameter-shaped tensor (a weight,
// an optimizer moment) at a time.
class Resplitter {
 public:
  Resplitter(Splits saved, Splits mine, int64_t tp, int64_t tp_rank, std::string files)
      : saved_(std::move(saved)), mine_(std::move(mine)), tp_(tp), tp_rank_(tp_rank), files_(std::move(files)) {}

  // `parts`: every saved tensor rank's tensor of parameter `name`, in rank order.
  torch::Tensor operator()(const std::string& name, const std::vector<torch::Tensor>& parts,
                           const std::string& what) const {
    try {
      const auto s = saved_.find(name);
      const auto whole = s != saved_.end() ? tensor_parallel::unshard(parts, s->second) : parts.at(0);
      const auto m = mine_.find(name);
      return m != mine_.end() ? tensor_parallel::shard(whole, m->second, tp_, tp_rank_) : whole;
    } catch (const EngineError& e) {
      throw CheckpointError(fmt::format("{}: {} of parameter '{}' cannot be split for {} tensor-parallel ranks: {}",
                                        files_, what, name, tp_, e.what()));
    }
  }
  bool saved_split(const std::string& name) const { return saved_.count(name) > 0; }
  const std::string& files() const { return files_; }

 private:
  Splits saved_, mine_;
  int64_t tp_, tp_rank_;
  std::string files_;
};

torch::Tensor tensor_at(const c10::impl::GenericDict& d, const std::string& key, const std::string& where) {
  const auto v = dict_at(d, key, where);
  if (!v.isTensor()) throw CheckpointError(where + ": '" + key + "' is a " + v.tagKind() + ", not a tensor");
  return v.toTensor();
}

c10::impl::GenericDict dict_of(const c10::IValue& v, const std::string& where) {
  if (!v.isGenericDict()) throw CheckpointError(where + " is a " + v.tagKind() + ", not a dict");
  return v.toGenericDict();
}

// The module entry: every tensor resplit, then checked against this model's parameters.
c10::impl::GenericDict resplit_module(const std::vector<c10::impl::GenericDict>& modules, const Resplitter& resplit,
                                      const torch::nn::Module& module) {
  auto out = make_string_dict();
  for (const auto& kv : modules[0]) {
    const auto& name = kv.key().toStringRef();
    if (!kv.value().isTensor()) {
      out.insert(name, kv.value());
      continue;
    }
    std::vector<torch::Tensor> parts;
    for (const auto& m : modules) parts.push_back(tensor_at(m, name, resplit.files() + ": module"));
    out.insert(name, resplit(name, parts, "the weight"));
  }
  for (const auto& p : module.named_parameters()) {
    if (!out.contains(p.key())) continue;
    const auto got = out.at(p.key()).toTensor();
    if (got.sizes() != p.value().sizes()) {
      throw CheckpointError(fmt::format("{}: parameter '{}' has shape {} once its {} tensor-parallel parts are put "
                                        "together and cut for this rank; this model's is {}",
                                        resplit.files(), p.key(), c10::str(got.sizes()), modules.size(),
                                        c10::str(p.value().sizes())));
    }
  }
  return out;
}

// A torch.optim state dict ({"state": {i: {...}}, "param_groups"}) whose tensor i is parameter
// names[i]: the per-element state (shaped like the saved parameter) resplit, the rest as saved.
c10::IValue resplit_optimizer_state_dict(const std::vector<c10::impl::GenericDict>& saved,
                                         const std::vector<c10::impl::GenericDict>& modules,
                                         const std::vector<std::string>& names, const Resplitter& resplit,
                                         const std::string& where) {
  std::vector<c10::impl::GenericDict> states;
  for (const auto& s : saved) states.push_back(dict_of(dict_at(s, "state", where), where + ".state"));
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  for (const auto& e : states[0]) {
    const int64_t i = e.key().toInt();
    if (i < 0 || static_cast<size_t>(i) >= names.size()) {
      throw CheckpointError(fmt::format("{} has state for tensor {}; this optimizer has {}", where, i, names.size()));
    }
    const auto& name = names[static_cast<size_t>(i)];
    auto entry = make_string_dict();
    for (const auto& kv : dict_of(e.value(), where + ".state")) {
      const auto& key = kv.key().toStringRef();
      const auto shape = modules[0].contains(name) ? tensor_at(modules[0], name, where).sizes().vec()
                                                   : std::vector<int64_t>{};
      if (!kv.value().isTensor() || kv.value().toTensor().sizes().vec() != shape || shape.empty()) {
        entry.insert(key, kv.value());
        continue;
      }
      std::vector<torch::Tensor> parts;
      for (size_t t = 0; t < states.size(); ++t) {
        const c10::IValue k(i);
        if (!states[t].contains(k)) throw CheckpointError(fmt::format("{} (tensor rank {}) has no state for '{}'", where, t, name));
        parts.push_back(tensor_at(dict_of(states[t].at(k), where), key, where));
      }
      entry.insert(key, resplit(name, parts, "optimizer state '" + key + "'"));
    }
    state.insert(i, entry);
  }
  auto out = make_string_dict();
  out.insert("state", state);
  out.insert("param_groups", dict_at(saved[0], "param_groups", where));
  return out;
}

// Stage 0's "optimizer" entry: the optimizer's state dict, or FP16_Optimizer's dict around it
// with the fp32 masters flattened per group.
c10::IValue resplit_stage0_optimizer(const std::vector<c10::impl::GenericDict>& files,
                                     const std::vector<c10::impl::GenericDict>& modules,
                                     const std::vector<std::vector<std::string>>& group_names,
                                     const Resplitter& resplit) {
  const std::string where = resplit.files() + ": optimizer";
  if (files[0].contains("optimizer") && files[0].at("optimizer").isNone()) return c10::IValue();
  std::vector<c10::impl::GenericDict> saved;
  for (const auto& f : files) saved.push_back(dict_of(dict_at(f, "optimizer", resplit.files()), where));
  std::vector<std::string> names;
  for (const auto& g : group_names) names.insert(names.end(), g.begin(), g.end());
  if (!saved[0].contains("optimizer_state_dict")) {
    return resplit_optimizer_state_dict(saved, modules, names, resplit, where);
  }
  auto out = saved[0].copy();
  std::vector<c10::impl::GenericDict> inner;
  for (const auto& s : saved) inner.push_back(dict_of(dict_at(s, "optimizer_state_dict", where), where));
  out.insert_or_assign("optimizer_state_dict",
                       resplit_optimizer_state_dict(inner, modules, names, resplit, where + ".optimizer_state_dict"));
  // fp32_groups_flat: each saved rank's group g is its parts of the group's parameters, flattened.
  std::vector<std::vector<torch::Tensor>> flats;
  for (const auto& s : saved) {
    flats.push_back(checkpoint::tensor_list(dict_at(s, "fp32_groups_flat", where), where + ".fp32_groups_flat"));
    if (flats.back().size() != group_names.size()) {
      throw CheckpointError(fmt::format("{}.fp32_groups_flat has {} groups; this optimizer has {}", where,
                                        flats.back().size(), group_names.size()));
    }
  }
  auto groups = make_list();
  for (size_t g = 0; g < group_names.size(); ++g) {
    std::vector<int64_t> offsets(files.size(), 0);
    std::vector<torch::Tensor> params;
    for (const auto& name : group_names[g]) {
      std::vector<torch::Tensor> parts;
      for (size_t t = 0; t < files.size(); ++t) {
        const auto shape = tensor_at(modules[t], name, where).sizes();
        const int64_t n = c10::multiply_integers(shape);
        if (offsets[t] + n > flats[t][g].numel()) {
          throw CheckpointError(fmt::format("{}.fp32_groups_flat[{}] of tensor rank {} is too short for '{}'", where, g,
                                            t, name));
        }
        parts.push_back(flats[t][g].reshape(-1).narrow(0, offsets[t], n).view(shape));
        offsets[t] += n;
      }
      params.push_back(resplit(name, parts, "the fp32 master").reshape(-1));
    }
    groups.push_back(params.empty() ? torch::zeros({0}) : checkpoint::tensor_for_file(flatten_tensors(params)));
  }
  out.insert_or_assign("fp32_groups_flat", groups);
  return out;
}

// ZeRO-1/2: every saved tensor rank's groups put together from its data ranks' files, resplit
// parameter by parameter, and written back as one data-parallel rank's file; `param_shapes`
// receives the new shapes.
c10::impl::GenericDict resplit_zero_file(const TensorParallelCheckpointLoad& load,
                                         const std::vector<c10::impl::GenericDict>& model_states,
                                         const Resplitter& resplit, c10::IValue& param_shapes) {
  std::vector<std::vector<checkpoint::ZeroGroupContents>> saved;  // [tensor rank][group]
  c10::impl::GenericDict first_inner = make_string_dict();
  for (int64_t t = 0; t < load.saved_tp; ++t) {
    std::vector<c10::impl::GenericDict> inner;
    std::vector<std::string> names;
    for (int64_t r = 0; r < load.saved_dp; ++r) {
      std::string name = checkpoint::zero_optim_states_file_name(r, t, false);
      if (!load.has(name)) name = checkpoint::zero_optim_states_file_name(r, t, true);
      names.push_back(load.dir + "/" + name);
      inner.push_back(dict_of(dict_at(load.read(name), "optimizer_state_dict", names.back()),
                              names.back() + ": optimizer_state_dict"));
      if (inner.back().contains("ds_cpp_layout")) {
        throw CheckpointError(names.back() + " keeps ZeRO partitions in this run's bucket layout, which does not "
                                             "load on another tensor-parallel degree");
      }
    }
    if (t == 0) first_inner = inner[0];
    saved.push_back(checkpoint::read_zero_groups(inner, names,
                                                 dict_at(model_states[static_cast<size_t>(t)], "param_shapes",
                                                         load.dir + "/" + checkpoint::model_states_file_name(t)),
                                                 load.load_optimizer_states));
  }
  auto flat_groups = make_list();
  auto shapes = make_list();
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  c10::List<int64_t> paddings;
  for (size_t g = 0; g < saved[0].size(); ++g) {
    const auto& first = saved[0][g];
    auto group_shapes = make_string_dict();
    std::vector<torch::Tensor> masters;
    std::map<std::string, std::vector<torch::Tensor>> per_element;
    for (size_t k = 0; k < first.names.size(); ++k) {
      const auto& name = first.names[k];
      auto parts_of = [&](const std::function<torch::Tensor(const checkpoint::ZeroGroupContents&)>& pick) {
        std::vector<torch::Tensor> parts;
        for (const auto& t : saved) {
          const auto& group = t.at(g);
          if (k >= group.names.size() || group.names[k] != name) {
            throw CheckpointError(fmt::format("{}: the tensor ranks' ZeRO files list different parameters in group {} "
                                              "(expected '{}')",
                                              resplit.files(), g, name));
          }
          parts.push_back(pick(group).view(group.shapes[k]));
        }
        return parts;
      };
      const auto master = resplit(name, parts_of([&](const auto& c) { return c.masters[k]; }), "the fp32 master");
      // A list, as param_shapes reads back from a file (a torch.Size is written as one).
      group_shapes.insert(name, c10::List<int64_t>(master.sizes()));
      masters.push_back(master.reshape(-1));
      for (const auto& [key, values] : first.per_element) {
        per_element[key].push_back(
            resplit(name, parts_of([&, key = key](const auto& c) { return c.per_element.at(key).at(k); }),
                    "optimizer state '" + key + "'")
                .reshape(-1));
      }
    }
    shapes.push_back(group_shapes);
    const auto flat = masters.empty() ? torch::zeros({0}) : torch::cat(masters);
    flat_groups.push_back(checkpoint::tensor_for_file(flat));
    paddings.push_back(checkpoint::zero12_padding(flat.numel(), 1, 0));
    if (!first.has_optimizer_state) continue;
    auto entry = make_string_dict();
    for (const auto& [key, values] : per_element) {
      entry.insert(key, checkpoint::tensor_for_file(checkpoint::zero12_partition(torch::cat(values), 1, 0)));
    }
    for (const auto& [key, value] : first.scalars) entry.insert(key, value);
    state.insert(static_cast<int64_t>(g), entry);
  }
  param_shapes = shapes;
  auto inner = make_string_dict();
  for (const char* key : {"loss_scaler", "dynamic_loss_scale", "overflow", "clip_grad", "zero_stage", "ds_version"}) {
    if (first_inner.contains(key)) inner.insert(key, first_inner.at(key));
  }
  inner.insert("partition_count", int64_t{1});
  inner.insert("single_partition_of_fp32_groups", flat_groups);
  inner.insert("group_paddings", paddings);
  const auto base = dict_of(dict_at(first_inner, "base_optimizer_state", resplit.files()), resplit.files());
  auto new_base = make_string_dict();
  new_base.insert("state", state);
  new_base.insert("param_groups", dict_at(base, "param_groups", resplit.files()));
  inner.insert("base_optimizer_state", new_base);
  auto file = make_string_dict();
  file.insert("optimizer_state_dict", inner);
  return file;
}

}  // namespace

c10::IValue tensor_parallel_entry(const std::vector<SplitParameter>& splits) {
  auto split = make_string_dict();
  for (const auto& s : splits) {
    auto d = make_string_dict();
    d.insert("dim", s.dim);
    d.insert("sub_sizes", c10::List<int64_t>(s.sub_sizes));
    split.insert(s.name, d);
  }
  auto entry = make_string_dict();
  entry.insert("split", split);
  return entry;
}

ResplitCheckpoint resplit_tensor_parallel_checkpoint(const TensorParallelCheckpointLoad& load) {
  const std::string files = fmt::format("{}/mp_rank_{{00..{:02d}}}_model_states.pt", load.dir, load.saved_tp - 1);
  if (load.saved_zero_stage == 3) {
    throw CheckpointError(fmt::format("{}: a ZeRO-3 checkpoint saved with {} tensor-parallel ranks loads only into {}",
                                      files, load.saved_tp, load.saved_tp));
  }
  std::vector<c10::impl::GenericDict> model_states, modules;
  for (int64_t t = 0; t < load.saved_tp; ++t) {
    const auto name = checkpoint::model_states_file_name(t);
    model_states.push_back(load.read(name));
    modules.push_back(dict_of(dict_at(model_states.back(), "module", load.dir + "/" + name), load.dir + "/" + name +
                                                                                                 ": module"));
  }
  const auto saved = read_splits(model_states[0], load.dir + "/" + checkpoint::model_states_file_name(0));
  if (saved.empty() && load.saved_tp > 1) {
    throw CheckpointError(fmt::format("{}: saved with {} tensor-parallel ranks but without the record of which "
                                      "parameters were split ({}); it loads only into {} tensor-parallel ranks",
                                      files, load.saved_tp, kEntry, load.saved_tp));
  }
  const Resplitter resplit(saved, by_name(load.splits), load.tp, load.tp_rank, files);
  ResplitCheckpoint out;
  out.file = files;
  out.model_states = model_states[0].copy();
  out.model_states.insert_or_assign("module", resplit_module(modules, resplit, *load.module));
  out.model_states.insert_or_assign(kEntry, tensor_parallel_entry(load.splits));
  if (load.saved_zero_stage == 0) {
    if (load.load_optimizer_states) {
      out.model_states.insert_or_assign("optimizer",
                                        resplit_stage0_optimizer(model_states, modules, load.optimizer_names, resplit));
    }
    return out;
  }
  c10::IValue param_shapes;
  out.zero_files.push_back(resplit_zero_file(load, model_states, resplit, param_shapes));
  out.zero_names.push_back(fmt::format("{}/zero_pp_rank_{{0..{}}}_mp_rank_{{00..{:02d}}}_optim_states.pt", load.dir,
                                       load.saved_dp - 1, load.saved_tp - 1));
  out.model_states.insert_or_assign("param_shapes", param_shapes);
  return out;
}

}  // namespace deepspeed
