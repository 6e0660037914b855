// The engine's decoder: the weights an injection policy matched (decoder_policy.h), a KV
// cache of max_tokens slots for one batch, and the two passes generation needs: prefill (the
// left-padded prompts, causal) and decode (one token per sequence over the cache). With
// CUDA graphs on, the first decode step of a batch size is captured and later steps replay it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include <deepspeed/comm.h>
#include <deepspeed/inference.h>

#include "inference/decoder_policy.h"

namespace deepspeed::inference {

class Decoder {
 public:
  // shape.heads: this rank's heads (all of them without tensor parallelism); tp_group: the
  // group the attention output and MLP projections are summed over (null: none). fused: the
  // op's kernels where the device has them.
  Decoder(DecoderShape shape, DecoderWeights weights, std::shared_ptr<comm::ProcessGroup> tp_group, bool fused,
          bool cuda_graphs, int64_t max_tokens, torch::Device device);
  ~Decoder();

  // Starts sequences of a batch: pads [batch] (int64) left-padding slots each. Reuses the
  // cache when the batch size is unchanged.
  void start(const torch::Tensor& pads);
  // tokens [batch, T] at slots [0, T). Returns the logits (fp32) of every position
  // [batch, T, vocab], or of the last one [batch, vocab].
  torch::Tensor prefill(const torch::Tensor& tokens, bool every_position);
  // tokens [batch] at the next slot. Returns the logits [batch, vocab] (fp32; valid until
  // the next call).
  torch::Tensor decode(const torch::Tensor& tokens);

  int64_t length() const { return length_host_; }
  int64_t max_tokens() const { return max_tokens_; }
  const DecoderShape& shape() const { return shape_; }
  bool cuda_graphs() const { return cuda_graphs_; }

 private:
  // One decode step reading the slot from length_ (device) and advancing it.
  torch::Tensor decode_step(const torch::Tensor& tokens);
  torch::Tensor blocks(torch::Tensor x, const std::function<torch::Tensor(int64_t, const torch::Tensor&)>& attention);
  torch::Tensor logits(const torch::Tensor& hidden);
  void all_reduce(torch::Tensor& t);

  DecoderShape shape_;
  DecoderWeights w_;
  std::shared_ptr<comm::ProcessGroup> tp_group_;
  bool fused_;
  bool cuda_graphs_;
  int64_t max_tokens_;
  torch::Device device_;
  std::vector<torch::Tensor> cache_k_, cache_v_;
  torch::Tensor pads_;
  torch::Tensor length_;  // int64 [1] on the device: the slot the next token goes to
  int64_t length_host_ = 0;
  struct Graph;
  std::unique_ptr<Graph> graph_;
};

}  // namespace deepspeed::inference
