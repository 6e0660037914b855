#include "gpt_pipe.h"

#include <stdexcept>

namespace gpt {

TokenEmbeddingImpl::TokenEmbeddingImpl(const GptConfig& c) {
  wte_ = register_module("wte", torch::nn::Embedding(c.vocab_size, c.d_model));
  wpe_ = register_module("wpe", torch::nn::Embedding(c.seq_len, c.d_model));
  torch::NoGradGuard no_grad;
  wte_->weight.normal_(0.0, 0.02);
  wpe_->weight.normal_(0.0, 0.02);
}

torch::Tensor TokenEmbeddingImpl::forward(torch::Tensor tokens) {
  auto positions = torch::arange(tokens.size(1), torch::TensorOptions().dtype(torch::kLong).device(tokens.device()));
  return wte_->forward(tokens) + wpe_->forward(positions);
}

std::vector<deepspeed::pipe::Layer> pipeline_layers(const GptConfig& c) {
  namespace pipe = deepspeed::pipe;
  if (c.transformer_kernel || c.moe_num_experts > 0) {
    throw std::invalid_argument("the pipeline GPT has dense Block layers only (no --transformer_kernel, no MoE)");
  }
  const pipe::LayerSpec embedding("TokenEmbedding", [c] { return torch::nn::AnyModule(TokenEmbedding(c)); });
  std::vector<pipe::Layer> layers;
  layers.emplace_back(pipe::TiedLayerSpec("embed", embedding, {}, {"wte.weight"}));
  for (int64_t i = 0; i < c.n_layer; ++i) layers.emplace_back(pipe::LayerSpec::of<Block>(c));
  const int64_t d = c.d_model;
  layers.emplace_back(pipe::LayerSpec(
      "LayerNorm", [d] { return torch::nn::AnyModule(torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}))); }));
  // The head: hidden x wte^T with the embedding's own weight.
  layers.emplace_back(pipe::TiedLayerSpec(
      "embed", embedding,
      [](torch::nn::Module& m, torch::Tensor x) { return torch::linear(x, m.named_parameters()["wte.weight"]); },
      {"wte.weight"}));
  return layers;
}

torch::Tensor pipeline_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32),
                                              targets.reshape({-1}));
}

}  // namespace gpt
