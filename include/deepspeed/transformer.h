// DeepSpeed's transformer kernel op (DeepSpeedTransformerLayer): one BERT-style (post-LN) or
// GPT-style (pre-LN) transformer block as a single autograd node, with fused CUDA kernels for
// everything between the GEMMs, and a CPU path that computes the same function.
//
//   deepspeed::ops::TransformerConfig c;
//   c.batch_size = 64; c.hidden_size = 1024; c.heads = 16; c.intermediate_size = 4096;
//   c.attn_dropout_ratio = c.hidden_dropout_ratio = 0.1f; c.num_hidden_layers = 24;
//   c.initializer_range = 0.02f; c.pre_layer_norm = false; c.seed = 42;
//   deepspeed::ops::TransformerLayer layer(c);
//   layer->to(torch::kCUDA, torch::kHalf);
//   auto y = layer(hidden, mask);   // hidden [batch, seq, hidden]; mask additive, see forward()
//
// Promises:
// - The block (DeepSpeed's, in its parameter names and order: attn_qkvw [3h, h] (query, key,
//   value rows), attn_qkvb, attn_ow, attn_ob, attn_nw, attn_nb, inter_w, inter_b, output_w,
//   output_b, norm_w, norm_b):
//     pre-LN:  a = x + drop(attn(LN(x; norm)) @ ow + ob);  y = a + drop(gelu(LN(a; attn_n) @ inter) @ output)
//     post-LN: a = LN(x + drop(attn(x) @ ow + ob); attn_n); y = LN(a + drop(gelu(a @ inter) @ output); norm)
//   attn is multi-head scaled dot-product attention with softmax(q k^T / sqrt(d) + mask) and
//   dropout on the probabilities; gelu is GELU's tanh form. The same block written with
//   torch::nn (Linear, LayerNorm, explicit attention) loads into it by copying parameters.
// - fp32, fp16 and bf16 (the parameters' dtype; the input must match). On CUDA tensors the
//   op's kernels run where this build has them (ds_report: transformer); elsewhere, and for
//   shapes they do not take, the same computation runs as ATen ops (slower, same masks).
// - Dropout is a function of (seed, call number, element): two layers with the same config
//   and seed, fed the same inputs, give bitwise the same outputs and gradients, on the CPU
//   and on one GPU. stochastic_mode (CUDA, the stochastic_transformer op) sums the layer-norm
//   weight gradients with atomics instead: faster, but their last bits vary run to run.
// - Memory options, each keeping the gradients the same: normalize_invertible keeps no
//   layer-norm input (backward recovers the normalised value from the output), gelu_checkpoint
//   keeps the GELU input but not its output (recomputed), attn_dropout_checkpoint keeps the
//   attention probabilities but not their dropped-out copy (regenerated from the seed).
//   saved_activation_bytes() tells what the last forward kept for backward.
// - Bad input is an OpError naming the field or tensor and what was expected.
#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace deepspeed::ops {

// DeepSpeedTransformerConfig's fields and defaults. -1 means "not set": hidden_size, heads,
// the two dropout ratios and (to initialise) initializer_range must be given;
// intermediate_size defaults to 4 * hidden_size, num_hidden_layers is needed with
// adjust_init_range.
struct TransformerConfig {
  int64_t batch_size = -1;  // the largest batch forward takes (-1: any)
  int64_t hidden_size = -1;
  int64_t intermediate_size = -1;
  int64_t heads = -1;
  float attn_dropout_ratio = -1;
  float hidden_dropout_ratio = -1;
  int64_t num_hidden_layers = -1;
  float initializer_range = -1;
  float layer_norm_eps = 1e-12f;
  int64_t local_rank = -1;  // >= 0: the parameters start on cuda:<local_rank>
  int64_t seed = -1;        // dropout seed; -1: drawn from torch's default generator
  bool fp16 = false;        // the parameters start in fp16 (else fp32; ->to() changes it)
  bool pre_layer_norm = true;
  bool normalize_invertible = false;
  bool gelu_checkpoint = false;
  bool adjust_init_range = true;  // residual projections start with std range / sqrt(2 layers)
  bool attn_dropout_checkpoint = false;
  bool stochastic_mode = false;
  // Python's layer returns (output,) when set; a C++ function has one return type, so
  // forward() returns the tensor and forward_tuple() the one-element tuple, whatever this says.
  bool return_tuple = false;
  bool training = true;  // the layer's initial mode (train()/eval() change it)

  int64_t intermediate() const { return intermediate_size > 0 ? intermediate_size : 4 * hidden_size; }
  // Throws OpError naming the first field out of range.
  void validate() const;
};

class TransformerLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerLayerImpl(const TransformerConfig& config);

  // hidden: [batch, seq, hidden_size], contiguous, the parameters' dtype and device.
  // attention_mask: undefined, or additive (0 keeps, a large negative value masks) of 4
  // dimensions broadcastable to [batch, heads, seq, seq] (BERT's [batch, 1, 1, seq]; a
  // causal [1, 1, seq, seq]). Returns [batch, seq, hidden_size].
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask = {});
  std::tuple<torch::Tensor> forward_tuple(const torch::Tensor& hidden, const torch::Tensor& attention_mask = {});

  // DeepSpeed's init_transformer_weights: normal(0, initializer_range) for attn_qkvw and
  // inter_w, normal(0, range / sqrt(2 * num_hidden_layers)) for attn_ow and output_w when
  // adjust_init_range, ones for the norm weights, zeros for every bias.
  void reset_parameters();

  const TransformerConfig& config() const { return config_; }
  // Bytes of the activations the last training forward kept for backward (parameters not
  // counted; 0 after an eval or no-grad forward).
  int64_t saved_activation_bytes() const { return saved_activation_bytes_; }
  // Whether the last forward ran the op's CUDA kernels (else ATen ops).
  bool last_forward_used_kernels() const { return last_forward_used_kernels_; }

  torch::Tensor attn_qkvw, attn_qkvb, attn_ow, attn_ob, attn_nw, attn_nb;
  torch::Tensor inter_w, inter_b, output_w, output_b, norm_w, norm_b;

 private:
  TransformerConfig config_;
  uint64_t seed_ = 0;
  uint64_t calls_ = 0;  // forwards run: each uses its own dropout offsets
  int64_t saved_activation_bytes_ = 0;
  bool last_forward_used_kernels_ = false;
};
TORCH_MODULE(TransformerLayer);

// Whether this build has the op's CUDA kernels (transformer, stochastic_transformer).
bool transformer_kernels_built();
bool stochastic_transformer_kernels_built();

}  // namespace deepspeed::ops
