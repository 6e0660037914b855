// AutoTP for training (DeepSpeed's module_inject/auto_tp.py and autotp_config.py): the layer
// specs from the preset, the user's partition_config and the default name rules, and their
// application to a model's tensor_parallel::Linear layers.
#include <regex>

#include <fmt/format.h>

#include <deepspeed/errors.h>
#include <deepspeed/tensor_parallel.h>

namespace deepspeed::tensor_parallel {
namespace {

TpLayerSpec spec(std::vector<std::string> patterns, const char* type, std::vector<std::vector<int64_t>> shape = {}) {
  TpLayerSpec s;
  s.patterns = std::move(patterns);
  s.partition_type = type;
  s.shape = std::move(shape);
  if (!s.shape.empty()) s.partition_dim = 0;
  return s;
}

// DeepSpeed's AutoTPPresets, for the module names a C++ port of those models would use.
std::vector<TpLayerSpec> preset(const std::string& name) {
  if (name == "llama" || name == "qwen2") {
    return {spec({R"(.*\.self_attn\.o_proj\.weight$)"}, "row"), spec({R"(.*\.self_attn\.[qkv]_proj\.weight$)"}, "column"),
            spec({R"(.*\.mlp\.down_proj\.weight$)"}, "row"), spec({R"(.*\.mlp\.(up|gate)_proj\.weight$)"}, "column")};
  }
  if (name == "bloom") {
    return {spec({R"(.*\.self_attention\.dense\.weight$)"}, "row"),
            spec({R"(.*\.self_attention\.query_key_value\.weight$)"}, "column"),
            spec({R"(.*\.mlp\.dense_4h_to_h\.weight$)"}, "row"), spec({R"(.*\.mlp\.dense_h_to_4h\.weight$)"}, "column")};
  }
  if (name == "chatglm") {
    return {spec({R"(.*\.self_attention\.dense\.weight$)"}, "row"),
            spec({R"(.*\.self_attention\.query_key_value\.weight$)"}, "column", {{3}, {-1}}),
            spec({R"(.*\.mlp\.dense_4h_to_h\.weight$)"}, "row"),
            spec({R"(.*\.mlp\.dense_h_to_4h\.weight$)"}, "column", {{2}, {-1}})};
  }
  if (name == "mixtral") {
    return {spec({R"(.*\.self_attn\.o_proj\.weight$)"}, "row"), spec({R"(.*\.self_attn\.[qkv]_proj\.weight$)"}, "column"),
            spec({R"(.*\.block_sparse_moe\.experts\.\d+\.w2\.weight$)"}, "row"),
            spec({R"(.*\.block_sparse_moe\.experts\.\d+\.w[13]\.weight$)"}, "column"),
            spec({R"(.*\.block_sparse_moe\.gate\.weight$)"}, "skip")};
  }
  if (name == "deepseek_v2") {
    return {spec({R"(.*\.self_attn\.o_proj\.weight$)"}, "row"),
            spec({R"(.*\.self_attn\.(q_a_proj|kv_a_proj_with_mqa)\.weight$)"}, "skip"),
            spec({R"(.*\.self_attn\.(q_b_proj|kv_b_proj)\.weight$)"}, "column"),
            spec({R"(.*\.mlp\.experts\.\d+\.down_proj\.weight$)"}, "row"),
            spec({R"(.*\.mlp\.experts\.\d+\.(up|gate)_proj\.weight$)"}, "column"),
            spec({R"(.*\.mlp\.gate\.weight$)"}, "skip"),
            spec({R"(.*\.mlp\.shared_experts\.down_proj\.weight$)"}, "row"),
            spec({R"(.*\.mlp\.shared_experts\.(up|gate)_proj\.weight$)"}, "column")};
  }
  if (name == "phi3") {
    return {spec({R"(.*\.self_attn\.o_proj\.weight$)"}, "row"),
            spec({R"(.*\.self_attn\.qkv_proj\.weight$)"}, "column", {{3}, {-1}}),
            spec({R"(.*\.mlp\.down_proj\.weight$)"}, "row"),
            spec({R"(.*\.mlp\.gate_up_proj\.weight$)"}, "column", {{2}, {-1}})};
  }
  return {};
}

// DeepSpeed's name rules for models without a preset or partition_config (auto_tp.py's
// all_reduce_linears, its skipped gates and its fused-layer names), as specs.
std::vector<TpLayerSpec> default_rules() {
  return {spec({R"((.*\.)?(lm_head|embed_out)\.weight$)", R"((.*\.)?(mlp\.gate|block_sparse_moe\.gate|shared_expert_gate)\.weight$)",
                R"(.*(q_a_proj|kv_a_proj_with_mqa)\.weight$)"},
               "skip"),
          spec({R"((.*\.)?(out_proj|o_proj|down_proj|c_proj|attn_proj|mlp_proj|fc2|dense_4h_to_h|w2)\.weight$)"}, "row"),
          spec({R"((.*\.)?(gate_up_proj)\.weight$)"}, "column", {{2}, {-1}}),
          // GPT-2's fused attention input: [q; k; v], each split on its own.
          spec({R"((.*\.)?c_attn\.weight$)"}, "column", {{3}, {-1}}),
          spec({R"((.*\.)?(q_proj|k_proj|v_proj|query|key|value|query_key_value|c_fc|fc1|up_proj|gate_proj|dense_h_to_4h|w1|w3)\.weight$)"},
               "column")};
}

bool matches(const TpLayerSpec& s, const std::string& param_name, const std::optional<std::string>& model_type) {
  if (!s.model_types.empty()) {
    if (!model_type) return false;
    bool listed = false;
    for (const auto& t : s.model_types) listed = listed || t == *model_type;
    if (!listed) return false;
  }
  for (const auto& p : s.patterns) {
    // Python's re.match: anchored at the start only.
    if (std::regex_search(param_name, std::regex(p), std::regex_constants::match_continuous)) return true;
  }
  return false;
}

// The sub-parameter sizes along the split dimension of a weight of `size` there.
std::vector<int64_t> sub_sizes(const TpLayerSpec& s, int64_t size, const std::string& name) {
  if (s.shape.empty()) return {};
  const auto& at = s.shape[static_cast<size_t>(s.effective_partition_dim())];
  if (at.size() > 1) {
    int64_t total = 0;
    for (auto v : at) total += v;
    if (total != size) {
      throw EngineError(fmt::format("AutoTP layer {}: sub-parameter sizes sum to {}, but the dimension has {}", name,
                                    total, size));
    }
    return at;
  }
  const int64_t n = at[0];
  if (n == -1) return {};
  if (size % n != 0) {
    throw EngineError(fmt::format("AutoTP layer {}: dimension of size {} cannot hold {} equal sub-parameters", name,
                                  size, n));
  }
  return std::vector<int64_t>(static_cast<size_t>(n), size / n);
}

}  // namespace

torch::Tensor shard_sub_params(const torch::Tensor& whole, int64_t dim, const std::vector<int64_t>& sizes,
                               int64_t parts, int64_t index, const std::string& what) {
  if (sizes.empty()) return shard(whole, dim, parts, index, what);
  std::vector<torch::Tensor> pieces;
  int64_t offset = 0;
  for (auto size : sizes) {
    pieces.push_back(shard(whole.narrow(dim, offset, size), dim, parts, index, what));
    offset += size;
  }
  return torch::cat(pieces, dim);
}

LayerSplit autotp_split(const std::string& param_name, const torch::Tensor& weight, const TensorParallelConfig& config) {
  for (const auto& s : autotp_layer_specs(config)) {
    if (!matches(s, param_name, config.preset_model)) continue;
    if (s.partition_type == "skip") return {};
    const bool column = s.partition_type == "column";
    return {column ? Partition::Column : Partition::Row, sub_sizes(s, weight.size(column ? 0 : 1), param_name)};
  }
  return {};
}

torch::Tensor LinearImpl::forward(const torch::Tensor& input) {
  switch (partition_) {
    case Partition::Column: {
      auto out = torch::linear(copy_to_tensor_model_parallel_region(input, *group_), weight, bias);
      return gather_output_ ? gather_from_tensor_model_parallel_region(out, *group_) : out;
    }
    case Partition::Row: {
      auto out = reduce_from_tensor_model_parallel_region(torch::linear(input, weight), *group_);
      return bias.defined() ? out + bias : out;
    }
    case Partition::Replicated: break;
  }
  return torch::linear(input, weight, bias);
}

void LinearImpl::partition(Partition how, std::shared_ptr<comm::ProcessGroup> group, const std::string& name,
                           const std::vector<int64_t>& sizes, bool gather_output) {
  if (partition_ != Partition::Replicated) throw EngineError("AutoTP layer " + name + " is already split");
  torch::NoGradGuard no_grad;
  partition_ = how;
  group_ = std::move(group);
  gather_output_ = gather_output;
  if (how == Partition::Replicated) return;
  sub_sizes_ = sizes;
  const SplitParameter split{name, how == Partition::Column ? 0 : 1, sizes};
  const int64_t parts = group_->size(), index = group_->rank();
  weight.set_data(shard(weight.detach(), split, parts, index, "AutoTP layer " + name + " weight"));
  if (how == Partition::Column && bias.defined()) {
    bias.set_data(shard(bias.detach(), split, parts, index, "AutoTP layer " + name + " bias"));
  }
}

std::vector<TpLayerSpec> autotp_layer_specs(const TensorParallelConfig& config) {
  std::vector<TpLayerSpec> base = config.preset_model ? preset(*config.preset_model) : std::vector<TpLayerSpec>{};
  if (config.has_partition_config) {
    auto specs = config.layer_specs;
    if (config.use_default_specs) specs.insert(specs.end(), base.begin(), base.end());
    return specs;
  }
  return config.preset_model ? base : default_rules();
}

AutoTpResult apply_autotp(torch::nn::Module& model, const TensorParallelConfig& config,
                          std::shared_ptr<comm::ProcessGroup> group) {
  const auto specs = autotp_layer_specs(config);
  AutoTpResult result;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const std::string& name = item.key();
    auto* linear = item.value()->as<torch::nn::LinearImpl>();
    if (!linear) continue;
    const std::string param_name = name + ".weight";
    const TpLayerSpec* found = nullptr;
    for (const auto& s : specs) {
      if (matches(s, param_name, config.preset_model)) {
        found = &s;
        break;
      }
    }
    if (!found) {
      if (config.strict_mode) throw EngineError("No matching spec for " + param_name);
      result.replicated.push_back(name);
      continue;
    }
    if (found->partition_type == "skip") {
      result.replicated.push_back(name);
      if (found->grad_allreduce && group->size() > 1) {
        for (auto& p : linear->parameters()) result.summed_gradient_parameters.push_back(p);
      }
      continue;
    }
    auto* splittable = dynamic_cast<LinearImpl*>(linear);
    if (!splittable) {
      throw EngineError("AutoTP layer " + name +
                        " is a torch::nn::Linear, which AutoTP cannot split (LibTorch modules have no forward hooks "
                        "to run the all-reduces in): declare it as deepspeed::tensor_parallel::Linear, or leave it "
                        "replicated with a \"skip\" layer spec (docs/tensor_parallel.md)");
    }
    const bool column = found->partition_type == "column";
    const int64_t dim = column ? 0 : 1;
    if (!found->shape.empty() && found->effective_partition_dim() != dim) {
      throw EngineError(fmt::format("AutoTP layer {}: a {} layer splits weight dimension {}, not the spec's "
                                    "partition_dim {}",
                                    name, found->partition_type, dim, found->effective_partition_dim()));
    }
    if (found->gather_output && !found->shape.empty()) {
      throw EngineError("AutoTP gather_output does not yet support shaped sub-parameter layers.");
    }
    const auto sizes = sub_sizes(*found, linear->weight.size(dim), name);
    if (group->size() > 1) {
      splittable->partition(column ? Partition::Column : Partition::Row, group, name, sizes, found->gather_output);
    }
    (column ? result.column : result.row).push_back(name);
    result.split_parameters.push_back(linear->weight);
    if (column && linear->bias.defined()) result.split_parameters.push_back(linear->bias);
  }
  // grad_allreduce: each rank holds part of such a parameter's gradient (it acts on split
  // activations); the hook sums them as soon as each is computed.
  for (auto& p : result.summed_gradient_parameters) {
    auto* g = group.get();
    p.register_hook([g](torch::Tensor grad) {
      auto summed = grad.contiguous().clone();
      g->all_reduce(summed);
      return summed;
    });
  }
  return result;
}

}  // namespace deepspeed::tensor_parallel
