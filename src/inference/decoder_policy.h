// Kernel injection policies (DeepSpeed's module_inject/containers): which named parameters
// of a model make a GPT-style decoder, and how its blocks are built. match_policy() reads a
// model's parameters into the engine's DecoderWeights, or says which parameter does not fit.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "transformer_inference/inference_ops.h"

namespace deepspeed::inference {

// A policy's names, relative to the model's prefix ("" or e.g. "model.").
struct DecoderPolicy {
  std::string name;
  std::string embedding;           // [vocab, d]
  std::string position_embedding;  // [max_positions, d]; "": rotary positions
  std::string final_norm;          // weight (and bias for LayerNorm) under this module
  std::string lm_head;             // [vocab, d]; "": tied to the embedding
  std::string blocks;              // the blocks are <blocks>.<i>.
  std::vector<std::string> qkv;    // one fused [3d, d] or q, k, v [d, d] each
  std::string attention_out, norm_1, norm_2;
  std::vector<std::string> mlp_in;  // one [4d, d], or gate and up [f, d] each (gated)
  std::string mlp_out;
  bool biases = true;  // the linear layers have biases
  ops::transformer_inference::NormKind norm = ops::transformer_inference::NormKind::LayerNorm;
  ops::transformer_inference::Activation activation = ops::transformer_inference::Activation::GeluTanh;
  double default_eps = 1e-5;
};

// The GPT example's model (GPT-2 names) and a LLaMA-style decoder (Hugging Face's names).
const std::vector<DecoderPolicy>& builtin_policies();

struct DecoderShape {
  int64_t vocab = 0, d_model = 0, heads = 0, head_dim = 0, layers = 0, ffn = 0;
  int64_t max_positions = 0;  // learned positions: the table's rows; rotary: 0 (no limit)
  ops::transformer_inference::NormKind norm = ops::transformer_inference::NormKind::LayerNorm;
  ops::transformer_inference::Activation activation = ops::transformer_inference::Activation::GeluTanh;
  double eps = 1e-5;
  double rope_theta = 0.0;  // 0: learned positions
};

// One block's tensors. Undefined: not in this model (biases of a LLaMA-style block, norm
// biases of RMSNorm). qkv is [3 * heads * head_dim, d] ([q; k; v]); mlp_in [f, d] or, gated,
// [2f, d] ([gate; up]).
struct BlockWeights {
  torch::Tensor norm_1_w, norm_1_b, qkv_w, qkv_b, out_w, out_b, norm_2_w, norm_2_b, mlp_in_w, mlp_in_b, mlp_out_w,
      mlp_out_b;
};

struct DecoderWeights {
  torch::Tensor embedding, position_embedding, final_norm_w, final_norm_b, lm_head;
  std::vector<BlockWeights> blocks;
};

struct MatchedModel {
  std::string policy;
  DecoderShape shape;
  DecoderWeights weights;
};

// Turns a parameter of the model (by its name) into the tensor the decoder holds: the dtype
// and device conversion, and tensor parallelism's split.
using PrepareParameter = std::function<torch::Tensor(const std::string& name, const torch::Tensor& value)>;

// Matches `params` (the model's named parameters) against the builtin policies and builds the
// decoder's weights from them through `prepare` (fused parts, q/k/v or gate/up, are
// concatenated after it). `heads`: the number of attention heads; `eps`: the norm's epsilon
// (unset: the policy's default). Throws EngineError naming the first parameter that does not
// fit the policy whose embedding the model has (the model's first parameter when none has
// one), a parameter the policy needs and the model lacks, or one of the wrong shape.
MatchedModel match_policy(const std::vector<std::pair<std::string, torch::Tensor>>& params, int64_t heads,
                          std::optional<double> eps, double rope_theta, const PrepareParameter& prepare);

}  // namespace deepspeed::inference
