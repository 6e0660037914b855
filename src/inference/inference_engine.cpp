// init_inference and the engine: the model's weights (loaded from a checkpoint first, when
// the config names one) matched by an injection policy, converted to the engine's dtype and
// device, split by AutoTP's rules for tensor parallelism, and handed to the Decoder; then the
// generation loop over it.
#include <deepspeed/inference.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <deepspeed/errors.h>
#include <deepspeed/tensor_parallel.h>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/consolidate.h"
#include "inference/decoder.h"
#include "inference/sampling.h"

namespace deepspeed::inference {
namespace {

torch::Device choose_device() {
  if (!torch::cuda::is_available()) return torch::kCPU;
  const char* local = std::getenv("LOCAL_RANK");
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(local ? std::atoi(local) : 0)};
}

// The checkpoint's consolidated fp32 weights (ZeRO shards reassembled) copied into the model.
void load_checkpoint(torch::nn::Module& model, const std::string& dir, const std::optional<std::string>& tag_or_latest) {
  CheckpointStorage storage;
  std::string tag;
  if (tag_or_latest) {
    tag = *tag_or_latest;
  } else {
    auto latest = checkpoint::read_latest_tag(storage, dir);
    if (!latest) throw CheckpointError(checkpoint::missing_latest_message(dir));
    tag = *latest;
  }
  const checkpoint::CheckpointReader reader(storage, dir, tag);
  std::map<std::string, torch::Tensor> state;
  for (auto& [name, value] : checkpoint::fp32_state_dict(reader)) state.emplace(name, value);
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    auto it = state.find(item.key());
    if (it == state.end()) {
      throw CheckpointError(fmt::format("checkpoint {}/{} has no weights for the model's parameter \"{}\"", dir, tag,
                                        item.key()));
    }
    if (!it->second.sizes().equals(item.value().sizes())) {
      throw CheckpointError(fmt::format("checkpoint {}/{}: parameter \"{}\" has shape [{}] there, the model's is [{}]", dir,
                                        tag, item.key(), fmt::join(it->second.sizes(), ", "),
                                        fmt::join(item.value().sizes(), ", ")));
    }
    item.value().copy_(it->second);
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

InferenceEngine::InferenceEngine(std::shared_ptr<torch::nn::Module> model, InferenceConfig config,
                                 std::shared_ptr<comm::ProcessGroup> tp_group, std::optional<torch::Device> device)
    : model_(std::move(model)), config_(std::move(config)), device_(device.value_or(choose_device())) {
  if (!model_) throw EngineError("init_inference: no model");
  if (config_.dtype == torch::kHalf && device_.is_cpu()) {
    throw ConfigError("dtype", "fp16 inference needs a CUDA device; on the CPU use fp32 (or bf16)");
  }
  if (config_.tp_size > 1) {
    if (!tp_group) tp_group = comm::world_group();
    if (!tp_group) {
      throw ConfigError("tensor_parallel.tp_size", "tp_size > 1 needs a process group (comm::init_distributed first)");
    }
    if (tp_group->size() != config_.tp_size) {
      throw ConfigError("tensor_parallel.tp_size",
                        fmt::format("{} does not match the group's {} ranks", config_.tp_size, tp_group->size()));
    }
  } else {
    tp_group = nullptr;
  }
  bool graphs = config_.enable_cuda_graph && device_.is_cuda();
  if (config_.enable_cuda_graph && !device_.is_cuda()) {
    std::cerr << "[deepspeed] init_inference: enable_cuda_graph is ignored without a CUDA device\n";
  }
  if (graphs && !config_.replace_with_kernel_inject) {
    throw ConfigError("enable_cuda_graph",
                      "needs replace_with_kernel_inject: only the fused decode kernels read the cache length from "
                      "device memory, which a replayed graph requires (docs/inference.md)");
  }
  if (graphs && config_.tp_size > 1) {
    throw ConfigError("enable_cuda_graph", "is not supported with tensor_parallel.tp_size > 1");
  }
  if (config_.checkpoint_dir) load_checkpoint(*model_, *config_.checkpoint_dir, config_.checkpoint_tag);

  std::vector<std::pair<std::string, torch::Tensor>> params;
  std::map<std::string, torch::Tensor> by_name;
  for (auto& item : model_->named_parameters(/*recurse=*/true)) {
    params.emplace_back(item.key(), item.value().detach());
    by_name.emplace(item.key(), item.value().detach());
  }
  // AutoTP's default rules (the training ones): column for c_attn (q, k, v each), c_fc,
  // q/k/v_proj, gate/up_proj; row for attn_proj, mlp_proj, o_proj, down_proj; the rest
  // (embeddings, norms, the output layer) replicated.
  const TensorParallelConfig tp_rules;
  const int64_t tp = config_.tp_size;
  const int64_t rank = tp_group ? tp_group->rank() : 0;
  const auto prepare = [&](const std::string& name, const torch::Tensor& value) {
    auto t = value.to(device_, config_.dtype);  // the same tensor when nothing changes
    if (tp == 1) return t;
    if (ends_with(name, ".weight") && t.dim() == 2) {
      const auto split = tensor_parallel::autotp_split(name, value, tp_rules);
      if (split.how == tensor_parallel::Partition::Replicated) return t;
      const int64_t dim = split.how == tensor_parallel::Partition::Column ? 0 : 1;
      return tensor_parallel::shard_sub_params(t, dim, split.sub_sizes, tp, rank, name);
    }
    if (ends_with(name, ".bias") && t.dim() == 1) {
      const std::string weight = name.substr(0, name.size() - 5) + ".weight";
      auto it = by_name.find(weight);
      if (it == by_name.end() || it->second.dim() != 2) return t;
      const auto split = tensor_parallel::autotp_split(weight, it->second, tp_rules);
      // A row-parallel layer's bias is added once, after the sum over the group.
      if (split.how != tensor_parallel::Partition::Column) return t;
      return tensor_parallel::shard_sub_params(t, 0, split.sub_sizes, tp, rank, name);
    }
    return t;
  };
  auto matched = match_policy(params, config_.num_attention_heads, config_.norm_eps, config_.rope_theta, prepare);
  policy_ = matched.policy;
  auto shape = matched.shape;
  if (shape.heads % tp != 0) {
    throw ConfigError("tensor_parallel.tp_size", fmt::format("{} does not divide the model's {} heads", tp, shape.heads));
  }
  shape.heads /= tp;
  const auto& first = matched.weights.blocks.front();
  if (first.qkv_w.size(0) != 3 * shape.heads * shape.head_dim) {
    throw EngineError(fmt::format("init_inference: the attention input of the {} policy was not split by AutoTP's rules "
                                  "({} rows on this rank, expected {})",
                                  policy_, first.qkv_w.size(0), 3 * shape.heads * shape.head_dim));
  }
  decoder_ = std::make_unique<Decoder>(shape, std::move(matched.weights), std::move(tp_group),
                                       config_.replace_with_kernel_inject, graphs, config_.max_out_tokens, device_);
}

InferenceEngine::~InferenceEngine() = default;

bool InferenceEngine::cuda_graphs() const { return decoder_->cuda_graphs(); }

torch::Tensor InferenceEngine::forward(const torch::Tensor& tokens) {
  if (tokens.dim() != 2 || tokens.size(1) == 0 || tokens.is_floating_point()) {
    throw EngineError(fmt::format("InferenceEngine::forward: expected integer tokens [batch, seq], got [{}] of {}",
                                  fmt::join(tokens.sizes(), ", "), c10::toString(tokens.scalar_type())));
  }
  decoder_->start(torch::zeros({tokens.size(0)}, torch::kLong));
  return decoder_->prefill(tokens, /*every_position=*/true);
}

std::vector<std::vector<int64_t>> InferenceEngine::generate(const std::vector<std::vector<int64_t>>& prompts,
                                                           const GenerationOptions& options) {
  if (prompts.empty()) throw EngineError("generate: no prompts");
  TokenSampler sampler(options);
  const auto batch = static_cast<int64_t>(prompts.size());
  int64_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw EngineError(fmt::format("generate: prompt {} is empty", i));
    for (auto token : prompts[i]) {
      if (token < 0 || token >= decoder_->shape().vocab) {
        throw EngineError(fmt::format("generate: prompt {} holds token {}, outside the vocabulary of {}", i, token,
                                      decoder_->shape().vocab));
      }
    }
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[i].size()));
  }
  // The last new token is never fed back: the cache holds the prompt and max_new_tokens - 1.
  if (longest + options.max_new_tokens - 1 > config_.max_out_tokens) {
    throw EngineError(fmt::format("generate: the longest prompt ({} tokens) + max_new_tokens {} exceed max_out_tokens {} "
                                  "(the KV cache's size; raise it in the config)",
                                  longest, options.max_new_tokens, config_.max_out_tokens));
  }
  const int64_t positions = decoder_->shape().max_positions;
  if (positions > 0 && longest + options.max_new_tokens - 1 > positions) {
    throw EngineError(fmt::format("generate: the longest prompt ({} tokens) + max_new_tokens {} exceed the model's {} "
                                  "positions",
                                  longest, options.max_new_tokens, positions));
  }
  // Left padding: every prompt ends at slot longest - 1, so that each step appends one slot
  // for all sequences.
  auto tokens = torch::full({batch, longest}, options.pad_token, torch::kLong);
  auto pads = torch::empty({batch}, torch::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const auto n = static_cast<int64_t>(p.size());
    pads[b] = longest - n;
    tokens[b].narrow(0, longest - n, n).copy_(torch::tensor(p, torch::kLong));
  }
  decoder_->start(pads);
  auto logits = decoder_->prefill(tokens, /*every_position=*/false);
  std::vector<std::vector<int64_t>> out(prompts.size());
  std::vector<bool> finished(prompts.size(), false);
  const auto is_stop = [&](int64_t t) {
    return std::find(options.stop_tokens.begin(), options.stop_tokens.end(), t) != options.stop_tokens.end();
  };
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const auto next = sampler.next(logits, /*suppress_stop=*/step < options.min_new_tokens);
    const auto* ids = next.data_ptr<int64_t>();
    bool all_done = true;
    for (int64_t b = 0; b < batch; ++b) {
      if (finished[static_cast<size_t>(b)]) continue;
      out[static_cast<size_t>(b)].push_back(ids[b]);
      if (is_stop(ids[b])) finished[static_cast<size_t>(b)] = true;
      all_done = all_done && finished[static_cast<size_t>(b)];
    }
    if (all_done || step + 1 == options.max_new_tokens) break;
    logits = decoder_->decode(next);
  }
  return out;
}

}  // namespace deepspeed::inference

namespace deepspeed {

std::shared_ptr<inference::InferenceEngine> init_inference(std::shared_ptr<torch::nn::Module> model,
                                                           const nlohmann::json& config,
                                                           std::shared_ptr<comm::ProcessGroup> tp_group) {
  return std::make_shared<inference::InferenceEngine>(std::move(model), inference::parse_inference_config(config),
                                                      std::move(tp_group));
}

}  // namespace deepspeed
