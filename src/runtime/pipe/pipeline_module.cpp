// PipelineModule: DeepSpeed's partitioning, building, tying and forward of a pipeline's
// layers (deepspeed/runtime/pipe/module.py), each step in DeepSpeed's order so that a rank
// builds, seeds and names its layers as a DeepSpeed rank at the same coordinates would.
#include <deepspeed/pipe.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <torch/nn/modules/container/functional.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/torch.h>

#include <deepspeed/activation_checkpointing.h>
#include <deepspeed/errors.h>
#include <deepspeed/pipe_partition.h>

#include "runtime/logger.h"

namespace deepspeed::pipe {
namespace {

const LayerSpec& spec_of(const Layer& layer) {
  return std::holds_alternative<LayerSpec>(layer) ? std::get<LayerSpec>(layer) : std::get<TiedLayerSpec>(layer).spec;
}

int64_t trainable_numel(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

// A dotted attribute path ("linear.weight") inside a module.
torch::Tensor tied_parameter(torch::nn::Module& module, const std::string& path, const std::string& key) {
  const auto named = module.named_parameters(/*recurse=*/true);
  if (const auto* p = named.find(path)) return *p;
  throw EngineError(fmt::format("TiedLayerSpec '{}': the module has no parameter '{}' (tied_weight_attr)", key, path));
}

ProcessTopology topology_for(const PipelineOptions& options, int64_t world_size) {
  if (options.topology) {
    const auto& axes = options.topology->get_axis_names();
    const bool known = axes == std::vector<std::string>{"pipe", "data"} ||
                       axes == std::vector<std::string>{"pipe", "data", "model"};
    if (!known) {
      throw EngineError(fmt::format("PipelineModule: the topology's axes must be (pipe, data) or (pipe, data, model), "
                                    "got ({})",
                                    fmt::join(axes, ", ")));
    }
    if (options.topology->world_size() != world_size) {
      throw EngineError(fmt::format("PipelineModule: the topology has {} ranks but the job has {}",
                                    options.topology->world_size(), world_size));
    }
    return *options.topology;
  }
  if (!options.num_stages) throw EngineError("PipelineModule: must provide num_stages or topology");
  const int64_t stages = *options.num_stages;
  if (stages < 1 || world_size % stages != 0) {
    throw EngineError(fmt::format("num_stages ({}) must divide distributed world size ({})", stages, world_size));
  }
  return PipeDataParallelTopology(stages, world_size / stages);
}

}  // namespace

const torch::Tensor& Activation::tensor(const std::string& who) const {
  if (is_tuple || tensors.size() != 1) {
    throw EngineError(fmt::format("{} takes one tensor but got a tuple of {} (a layer made with LayerSpec::of_tuple or "
                                  "activation_function takes tuples)",
                                  who, tensors.size()));
  }
  return tensors.front();
}

LayerSpec LayerSpec::function(std::string name, std::function<torch::Tensor(torch::Tensor)> fn) {
  if (!fn) throw EngineError("LayerSpec::function '" + name + "': the function is empty");
  const std::string who = "layer function '" + name + "'";
  return activation_function(std::move(name), [fn = std::move(fn), who](Activation x) { return Activation(fn(x.tensor(who))); });
}

LayerSpec LayerSpec::activation_function(std::string name, ActivationFunction fn) {
  if (!fn) throw EngineError("LayerSpec::activation_function '" + name + "': the function is empty");
  LayerSpec spec(std::move(name), {});
  spec.function_ = std::move(fn);
  return spec;
}

LayerSpec::ActivationFunction LayerSpec::module_forward(torch::nn::AnyModule module) const {
  if (tuple_) {
    return [module](Activation x) mutable {
      return Activation::tuple(module.forward<std::vector<torch::Tensor>>(std::move(x.tensors)));
    };
  }
  return [module, who = "layer " + type_name_](Activation x) mutable {
    return Activation(module.forward<torch::Tensor>(x.tensor(who)));
  };
}

torch::nn::AnyModule LayerSpec::build() const {
  if (function_) {
    return torch::nn::AnyModule(torch::nn::Functional([f = function_](torch::Tensor x) { return f(x).tensor(); }));
  }
  if (!build_) throw EngineError("LayerSpec '" + type_name_ + "' has no factory");
  return build_();
}

std::string LayerSpec::unqualified(const std::string& name) {
  const auto colon = name.rfind("::");
  return colon == std::string::npos ? name : name.substr(colon + 2);
}

PipelineModule::PipelineModule(std::vector<Layer> layers, PipelineOptions options)
    : specs_(std::move(layers)),
      options_(std::move(options)),
      world_(options_.world ? options_.world : comm::init_distributed()),
      topology_(topology_for(options_, world_->size())) {
  if (options_.num_stages && options_.topology && *options_.num_stages != options_.topology->get_dim("pipe")) {
    throw EngineError(fmt::format("PipelineModule: num_stages {} differs from the topology's {} pipe stages",
                                  *options_.num_stages, options_.topology->get_dim("pipe")));
  }
  if (specs_.empty()) throw EngineError("PipelineModule: the layer list is empty");
  if (options_.activation_checkpoint_interval < 0) {
    throw EngineError("PipelineModule: activation_checkpoint_interval must be >= 0, got " +
                      std::to_string(options_.activation_checkpoint_interval));
  }
  num_stages_ = topology_.get_dim("pipe");
  stage_id_ = topology_.get_coord(world_->rank(), "pipe");
  ParallelSizes sizes;
  sizes.pipe = num_stages_;
  sizes.tensor = std::max<int64_t>(topology_.get_dim("model"), 1);
  groups_ = Groups::create(world_, sizes);
  if (world_->rank() == 0) {
    Logger(0, LogLevel::Info)
        .info(fmt::format("SEED_LAYERS={} BASE_SEED={} SEED_FN=None", options_.seed_layers ? "True" : "False",
                          options_.base_seed));
  }
  partition_layers();
  build();
  index_tied_modules();
  synchronize_tied_weights();
}

void PipelineModule::partition_layers() {
  std::string method = options_.partition_method;
  std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
  if (world_->rank() == 0) Logger(0, LogLevel::Info).info("Partitioning pipeline stages with method " + method);
  if (method == "uniform") {
    parts_ = partition_uniform(num_layers(), num_stages_);
  } else if (method == "parameters") {
    // Each layer built once, to count its trainable parameters (as DeepSpeed does).
    std::vector<int64_t> counts;
    for (const auto& layer : specs_) {
      const auto& spec = spec_of(layer);
      counts.push_back(spec.is_function() ? 0 : trainable_numel(*spec.build().ptr()));
    }
    parts_ = partition_balanced(counts, num_stages_);
  } else if (method.rfind("type:", 0) == 0) {
    const std::string pattern = options_.partition_method.substr(5);
    std::regex type_regex;
    try {
      type_regex = std::regex(pattern, std::regex::icase);
    } catch (const std::regex_error& e) {
      throw EngineError(fmt::format("partition_method '{}': '{}' is not a valid regular expression ({})",
                                    options_.partition_method, pattern, e.what()));
    }
    std::vector<int64_t> weights;
    bool any = false;
    for (const auto& layer : specs_) {
      const bool match = std::regex_search(spec_of(layer).type_name(), type_regex);
      weights.push_back(match ? 1 : 0);
      any = any || match;
    }
    if (!any) throw EngineError(fmt::format("Partitioning '{}' found no valid layers to partition.", pattern));
    parts_ = partition_balanced(weights, num_stages_);
  } else {
    throw EngineError(fmt::format("Partitioning method {} not implemented (partition_method: \"parameters\", "
                                  "\"uniform\" or \"type:REGEX\")",
                                  options_.partition_method));
  }
  if (world_->rank() == 0) {
    std::string text;
    for (int64_t s = 0; s < num_stages_; ++s) {
      text += fmt::format("stage={} layers={}\n", s, parts_[s + 1] - parts_[s]);
      for (int64_t i = parts_[s]; i < parts_[s + 1]; ++i) text += fmt::format("    {:2d}: {}\n", i, spec_of(specs_[i]).type_name());
    }
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  }
}

void PipelineModule::build() {
  // Registered first, as DeepSpeed's ModuleDict is: tied parameters come before the layers'.
  auto tied = register_module("tied_modules", torch::nn::ModuleDict());
  for (int64_t idx = local_start(); idx < local_stop(); ++idx) {
    if (options_.seed_layers) torch::manual_seed(static_cast<uint64_t>(options_.base_seed + idx));
    const auto& layer = specs_[idx];
    if (const auto* t = std::get_if<TiedLayerSpec>(&layer)) {
      if (!tied_modules_.count(t->key)) {
        auto module = t->spec.build();
        tied->update({{t->key, module.ptr()}});
        tied_modules_.emplace(t->key, module);
        tied_weight_attrs_[t->key] = t->tied_weight_attr;
      }
      auto& module = tied_modules_.at(t->key);
      if (t->forward_fn) {
        forward_funcs_.push_back([fn = t->forward_fn, m = module.ptr(), who = "tied layer '" + t->key + "'"](Activation x) {
          return Activation(fn(*m, x.tensor(who)));
        });
        layer_modules_.push_back(nullptr);
      } else {
        forward_funcs_.push_back(t->spec.module_forward(module));
        layer_modules_.push_back(module.ptr().get());
      }
      continue;
    }
    const auto& spec = std::get<LayerSpec>(layer);
    if (spec.is_function()) {
      forward_funcs_.push_back(spec.function());
      layer_modules_.push_back(nullptr);
      continue;
    }
    auto module = spec.build();
    register_module(std::to_string(idx), module.ptr());
    forward_funcs_.push_back(spec.module_forward(module));
    layer_modules_.push_back(module.ptr().get());
  }
}

void PipelineModule::index_tied_modules() {
  if (num_stages_ == 1) return;
  std::set<std::string> keys;
  for (const auto& layer : specs_) {
    if (const auto* t = std::get_if<TiedLayerSpec>(&layer)) keys.insert(t->key);
  }
  const int64_t data = topology_.get_dim("data");
  const int64_t model = std::max<int64_t>(topology_.get_dim("model"), 1);
  const bool has_model = topology_.get_dim("model") > 0;
  for (const auto& key : keys) {  // sorted: every rank makes the groups in the same order
    std::set<int64_t> stages;
    for (int64_t i = 0; i < num_layers(); ++i) {
      if (const auto* t = std::get_if<TiedLayerSpec>(&specs_[i]); t && t->key == key) stages.insert(stage_owner(i));
    }
    for (int64_t dp = 0; dp < data; ++dp) {
      for (int64_t mp = 0; mp < model; ++mp) {
        std::vector<int64_t> ranks;
        for (const int64_t s : stages) {
          std::map<std::string, int64_t> coord{{"pipe", s}, {"data", dp}};
          if (has_model) coord["model"] = mp;
          ranks.push_back(topology_.get_rank(coord));
        }
        if (std::find(ranks.begin(), ranks.end(), world_->rank()) == ranks.end()) continue;
        // Only the members make the group (our new_group, unlike torch's, is not collective
        // over the world); a tie held by one stage needs none.
        TieGroup tie{ranks, ranks.size() > 1 ? world_->new_group(ranks) : nullptr};
        tie_groups_.emplace(key, std::move(tie));
      }
    }
  }
}

int64_t PipelineModule::stage_owner(int64_t layer_idx) const {
  if (layer_idx < 0 || layer_idx >= num_layers()) {
    throw EngineError(fmt::format("stage_owner: layer {} is not one of the {} layers", layer_idx, num_layers()));
  }
  for (int64_t s = 0; s < num_stages_; ++s) {
    if (parts_[s] <= layer_idx && layer_idx < parts_[s + 1]) return s;
  }
  throw EngineError(fmt::format("Layer {} not owned? parts={}", layer_idx, fmt::join(parts_, ",")));
}

std::vector<torch::Tensor> PipelineModule::tied_weights() const {
  std::vector<torch::Tensor> out;
  for (const auto& [key, tie] : tie_groups_) {
    for (const auto& attr : tied_weight_attrs_.at(key)) out.push_back(tied_parameter(*tied_modules_.at(key).ptr(), attr, key));
  }
  return out;
}

std::vector<torch::Tensor> PipelineModule::tied_weights_counted_elsewhere() const {
  std::vector<torch::Tensor> out;
  for (const auto& [key, tie] : tie_groups_) {
    if (tie.ranks.front() == world_->rank()) continue;
    // Every parameter of the tied module, as DeepSpeed marks them all ds_pipe_replicated.
    for (const auto& p : tied_modules_.at(key).ptr()->parameters()) out.push_back(p);
  }
  return out;
}

void PipelineModule::allreduce_tied_weight_gradients() {
  for (const auto& [key, tie] : tie_groups_) {
    if (!tie.group) continue;
    for (const auto& attr : tied_weight_attrs_.at(key)) {
      auto weight = tied_parameter(*tied_modules_.at(key).ptr(), attr, key);
      auto grad = weight.mutable_grad();
      // A stage whose layers did not use the weight still takes part, with zeros.
      if (!grad.defined()) {
        grad = torch::zeros_like(weight);
        weight.mutable_grad() = grad;
      }
      tie.group->all_reduce(grad);
    }
  }
}

void PipelineModule::synchronize_tied_weights() {
  torch::NoGradGuard no_grad;
  for (const auto& [key, tie] : tie_groups_) {
    if (!tie.group) continue;
    for (const auto& attr : tied_weight_attrs_.at(key)) {
      auto weight = tied_parameter(*tied_modules_.at(key).ptr(), attr, key);
      tie.group->broadcast(weight, 0);  // group rank 0 is the first holding stage
    }
  }
}

void PipelineModule::set_checkpoint_interval(int64_t interval) {
  if (interval < 0) throw EngineError("set_checkpoint_interval: the interval must be >= 0, got " + std::to_string(interval));
  options_.activation_checkpoint_interval = interval;
}

Activation PipelineModule::run_layers(int64_t begin, int64_t end, Activation x, int64_t micro_offset) {
  for (int64_t i = begin; i < end; ++i) {
    if (options_.seed_layers) {
      // DeepSpeed counts the layer from the block's start (its enumerate over the block), so
      // blocks of a checkpoint interval reuse seeds; kept so that dropout masks match.
      torch::manual_seed(static_cast<uint64_t>(options_.base_seed * micro_offset + local_start() + (i - begin)));
    }
    x = forward_funcs_[i](std::move(x));
  }
  return x;
}

torch::Tensor PipelineModule::forward(torch::Tensor x) {
  return forward_activation(Activation(std::move(x))).tensor("PipelineModule::forward (its last layer's output)");
}

Activation PipelineModule::forward_activation(Activation x) {
  // DeepSpeed's offset: the seed of a layer's forward depends on how many forwards ran, and a
  // checkpointed block recomputes with the offset it first ran with.
  ++micro_offset_;
  const int64_t offset = micro_offset_ + 1;
  const auto n = static_cast<int64_t>(forward_funcs_.size());
  const int64_t interval = options_.activation_checkpoint_interval;
  if (interval == 0) return run_layers(0, n, std::move(x), offset);
  for (int64_t start = 0; start < n; start += interval) {
    const int64_t end = std::min(start + interval, n);
    // DeepSpeed checkpoints a block when one of its layers has parameters.
    bool has_parameters = false;
    for (int64_t i = start; i < end; ++i) {
      has_parameters = has_parameters || (layer_modules_[i] && !layer_modules_[i]->parameters().empty());
    }
    if (has_parameters) {
      // The block's output form is known once it ran; the recompute returns the same form.
      auto is_tuple = std::make_shared<bool>(false);
      const bool tuple_in = x.is_tuple;
      auto outputs = checkpointing::checkpoint_tensors(
          [this, start, end, offset, tuple_in, is_tuple](const torch::autograd::variable_list& in) {
            Activation a;
            a.tensors = in;
            a.is_tuple = tuple_in;
            auto out = run_layers(start, end, std::move(a), offset);
            *is_tuple = out.is_tuple;
            return out.tensors;
          },
          std::move(x.tensors));
      x = Activation();
      x.tensors = std::move(outputs);
      x.is_tuple = *is_tuple;
    } else {
      x = run_layers(start, end, std::move(x), offset);
    }
  }
  return x;
}

std::string PipelineModule::ckpt_layer_path(const std::string& dir, int64_t layer_idx) const {
  std::string path = (std::filesystem::path(dir) / fmt::format("layer_{:02d}", layer_idx)).string();
  const auto repr = topology_.get_rank_repr(world_->rank());
  if (!repr.empty()) path += "-" + repr;
  return path + "-model_states.pt";
}

std::vector<std::pair<int64_t, torch::nn::Module*>> PipelineModule::layers_with_state() const {
  std::vector<std::pair<int64_t, torch::nn::Module*>> out;
  for (size_t i = 0; i < layer_modules_.size(); ++i) {
    if (layer_modules_[i]) out.emplace_back(local_start() + static_cast<int64_t>(i), layer_modules_[i]);
  }
  return out;
}

std::vector<PipelineModule::StateSource> PipelineModule::checkpoint_sources() const {
  std::vector<StateSource> out;
  for (const auto& [key, module] : tied_modules_) {
    int64_t holder = -1;
    for (int64_t i = 0; i < num_layers() && holder < 0; ++i) {
      const auto* t = std::get_if<TiedLayerSpec>(&specs_[i]);
      if (t && t->key == key && !t->forward_fn) holder = i;
    }
    if (holder < 0) {
      throw EngineError(fmt::format("tied module '{}': every layer of the key runs through a forward_fn, so no layer "
                                    "file holds its weights (DeepSpeed saves a tied module with the layers that call "
                                    "it directly)",
                                    key));
    }
    out.push_back({"tied_modules." + key + ".", holder});
  }
  for (size_t i = 0; i < layer_modules_.size(); ++i) {
    const int64_t idx = local_start() + static_cast<int64_t>(i);
    if (layer_modules_[i] && std::holds_alternative<LayerSpec>(specs_[idx])) out.push_back({std::to_string(idx) + ".", idx});
  }
  return out;
}

}  // namespace deepspeed::pipe
