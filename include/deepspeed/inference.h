// Inference (DeepSpeed's deepspeed.init_inference and InferenceEngine): a GPT-style decoder
// model becomes the engine's own decoder with a preallocated KV cache, which runs forward
// passes and generates tokens (greedy or sampled) for a batch of prompts.
//
//   auto engine = deepspeed::init_inference(model, {{"dtype", "bf16"}, {"replace_with_kernel_inject", true},
//                                                   {"config", {{"num_attention_heads", 16}}}});
//   auto out = engine->generate({{1, 2, 3}, {4, 5}}, {.max_new_tokens = 32});
//
// Promises (docs/inference.md): the model's named parameters are matched against an injection
// policy (GPT-2-style or LLaMA-style); a model no policy fits is refused with an error naming
// the first parameter that does not fit. The engine holds the model's weights (views where
// dtype and device already match), so the model must not change them while the engine lives.
// Greedy generation gives the tokens the model's own forward would pick step by step. Every
// rank of a tensor-parallel group calls forward and generate with the same arguments.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <deepspeed/comm.h>

namespace deepspeed::inference {

// DeepSpeed's DeepSpeedInferenceConfig keys that deepspeed-cpp implements (docs/inference.md);
// parse_inference_config rejects unknown keys and unsupported values with a ConfigError naming them.
struct InferenceConfig {
  torch::ScalarType dtype = torch::kHalf;  // "dtype": fp16 (default, as DeepSpeed), bf16, fp32
  int64_t tp_size = 1;                     // "tensor_parallel": {"tp_size"} (or the old "mp_size")
  bool replace_with_kernel_inject = false;  // fused kernels (and CUDA graphs) on CUDA
  int64_t max_out_tokens = 1024;           // KV cache slots: prompt + generated tokens
  int64_t min_out_tokens = 1;
  bool enable_cuda_graph = false;          // capture one decode step per batch size
  // "checkpoint": a folder save_checkpoint wrote (its `latest` tag), or
  // {"checkpoint_dir": ..., "tag": ...}.
  std::optional<std::string> checkpoint_dir;
  std::optional<std::string> checkpoint_tag;
  // "config" (DeepSpeed's model args, Hugging Face names): what the parameters do not say.
  int64_t num_attention_heads = 0;         // required
  std::optional<double> norm_eps;          // layer_norm_epsilon / rms_norm_eps (default 1e-5 / 1e-6)
  double rope_theta = 10000.0;             // rotary base (LLaMA-style models)
};

InferenceConfig parse_inference_config(const nlohmann::json& json);

// Hugging Face's generate() options of the same names.
struct GenerationOptions {
  int64_t max_new_tokens = 32;
  int64_t min_new_tokens = 0;  // stop tokens are not chosen before this many new tokens
  bool do_sample = false;      // false: greedy
  double temperature = 1.0;
  int64_t top_k = 0;           // 0: off
  double top_p = 1.0;          // 1: off
  uint64_t seed = 0;           // the sampling generator's seed: the same seed, the same tokens
  std::vector<int64_t> stop_tokens = {};  // a sequence ends after emitting one (it is kept)
  int64_t pad_token = 0;       // fills the left padding of shorter prompts (never attended to)
};

class Decoder;

class InferenceEngine {
 public:
  // device: where the engine runs (default: GPU LOCAL_RANK where CUDA is available, else the CPU).
  InferenceEngine(std::shared_ptr<torch::nn::Module> model, InferenceConfig config,
                  std::shared_ptr<comm::ProcessGroup> tp_group, std::optional<torch::Device> device = std::nullopt);
  ~InferenceEngine();

  // tokens [batch, seq] int64 -> logits [batch, seq, vocab] (fp32), one pass without a cache.
  torch::Tensor forward(const torch::Tensor& tokens);
  // The new tokens of each prompt (prompts may differ in length; each has at least one token).
  std::vector<std::vector<int64_t>> generate(const std::vector<std::vector<int64_t>>& prompts,
                                             const GenerationOptions& options = {});

  const InferenceConfig& config() const { return config_; }
  // The injection policy that matched the model: "gpt2" or "llama".
  const std::string& policy() const { return policy_; }
  torch::Device device() const { return device_; }
  // Whether decode steps replay CUDA graphs (enable_cuda_graph on a CUDA device).
  bool cuda_graphs() const;

 private:
  std::shared_ptr<torch::nn::Module> model_;
  InferenceConfig config_;
  std::string policy_;
  torch::Device device_;
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace deepspeed::inference

namespace deepspeed {

// DeepSpeed's init_inference. `config`: the inference config as JSON (parse_inference_config).
// tp_size > 1 splits the blocks over `tp_group` (default: the world group, which must have
// tp_size ranks). Loads "checkpoint" into the model first, when given.
std::shared_ptr<inference::InferenceEngine> init_inference(std::shared_ptr<torch::nn::Module> model,
                                                           const nlohmann::json& config,
                                                           std::shared_ptr<comm::ProcessGroup> tp_group = nullptr);

}  // namespace deepspeed
