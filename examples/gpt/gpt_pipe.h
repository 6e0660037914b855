// The GPT of gpt_model.h as a pipeline's layers (as DeepSpeed's GPT2ModelPipe is laid out):
// the embedding (token and position) as a tied layer, the blocks, the final LayerNorm, and the
// output projection as the same tied layer run through a forward_fn, so that the embedding
// and the head share one weight across the first and the last stage. Built with seed_layers,
// a layer starts from the same weights whatever stage holds it.
#pragma once

#include <vector>

#include <deepspeed/pipe.h>
#include <torch/torch.h>

#include "gpt_model.h"

namespace gpt {

// Token and position embeddings: tokens [batch, seq] -> hidden [batch, seq, d_model].
class TokenEmbeddingImpl : public torch::nn::Module {
 public:
  explicit TokenEmbeddingImpl(const GptConfig& c);
  torch::Tensor forward(torch::Tensor tokens);
  const torch::Tensor& token_weight() const { return wte_->weight; }

 private:
  torch::nn::Embedding wte_{nullptr}, wpe_{nullptr};
};
TORCH_MODULE(TokenEmbedding);

// Only dense blocks of Block (no transformer op, no MoE: their forward is not one tensor in,
// one out, or needs l_aux beside it).
std::vector<deepspeed::pipe::Layer> pipeline_layers(const GptConfig& c);
// The mean cross-entropy, in fp32, of logits [batch, seq, vocab] against targets [batch, seq].
torch::Tensor pipeline_loss(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace gpt
