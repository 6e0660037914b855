// The transformer layer's forward and backward as one autograd node (DeepSpeed's
// DeepSpeedTransformerFunction): the GEMMs through ATen (cuBLAS on the GPU), everything
// between them through Primitives, and only the activations the memory options keep saved.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace deepspeed::ops::transformer_detail {

struct LayerSpec {
  int64_t heads = 1;
  double eps = 1e-12;
  float attn_dropout = 0.0f;    // already 0 outside training
  float hidden_dropout = 0.0f;
  bool pre_layer_norm = true;
  bool normalize_invertible = false;
  bool gelu_checkpoint = false;
  bool attn_dropout_checkpoint = false;
  bool stochastic = false;
  bool use_kernels = false;     // the op's CUDA kernels, else ATen ops
  uint64_t seed = 0;
  uint64_t offset = 0;          // this call's first dropout offset (it uses three)
};

struct ForwardStats {
  int64_t saved_activation_bytes = 0;
};

// params: attn_qkvw, attn_qkvb, attn_ow, attn_ob, attn_nw, attn_nb, inter_w, inter_b,
// output_w, output_b, norm_w, norm_b. mask: undefined, or 4-D, broadcastable to
// [batch, heads, seq, seq], in x's dtype and device, last dimension contiguous.
torch::Tensor transformer_apply(const LayerSpec& spec, const torch::Tensor& x, const torch::Tensor& mask,
                                const std::vector<torch::Tensor>& params, ForwardStats* stats);

}  // namespace deepspeed::ops::transformer_detail
