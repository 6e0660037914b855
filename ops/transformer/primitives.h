// The steps between the GEMMs of the transformer layer, behind one interface so that the
// layer's forward and backward (transformer_function.cpp) are written once: as ATen ops
// (aten_primitives.cpp: any device, the reference) and as the op's fused CUDA kernels
// (cuda_primitives.cpp). Both draw dropout from cuda/common/philox.h, so they drop the same
// elements. Tensors are contiguous; 2-D ones are [rows, columns].
#pragma once

#include <cstdint>
#include <utility>

#include <torch/types.h>

namespace deepspeed::ops::transformer_detail {

struct DropoutSite {
  float ratio = 0.0f;  // 0: identity
  uint64_t seed = 0;
  uint64_t offset = 0;
};

struct LayerNormResult {
  torch::Tensor y, mean, rstd;  // mean, rstd: [rows] fp32
};

struct LayerNormGrads {
  torch::Tensor dx, dgamma, dbeta;
};

class Primitives {
 public:
  virtual ~Primitives() = default;

  virtual LayerNormResult layer_norm(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta,
                                     double eps) const = 0;
  // saved: the input x (with mean), or the output y when from_output. residual_grad, when
  // defined, is added to dx.
  virtual LayerNormGrads layer_norm_backward(const torch::Tensor& dy, const torch::Tensor& saved, bool from_output,
                                             const torch::Tensor& gamma, const torch::Tensor& beta,
                                             const torch::Tensor& mean, const torch::Tensor& rstd,
                                             const torch::Tensor& residual_grad) const = 0;
  // scores: [batch, heads, queries, keys], already scaled. mask: undefined or additive,
  // broadcastable to scores, in scores' dtype. Returns (probs, dropped); dropped is undefined
  // when the ratio is 0.
  virtual std::pair<torch::Tensor, torch::Tensor> softmax_dropout(const torch::Tensor& scores,
                                                                  const torch::Tensor& mask,
                                                                  const DropoutSite& site) const = 0;
  // The gradient of the unscaled scores (scale * the gradient of the scaled ones).
  virtual torch::Tensor softmax_dropout_backward(const torch::Tensor& grad_dropped, const torch::Tensor& probs,
                                                 double scale, const DropoutSite& site) const = 0;
  virtual torch::Tensor dropout(const torch::Tensor& x, const DropoutSite& site) const = 0;
  // residual + dropout(x + bias)
  virtual torch::Tensor bias_dropout_residual(const torch::Tensor& x, const torch::Tensor& bias,
                                              const torch::Tensor& residual, const DropoutSite& site) const = 0;
  virtual torch::Tensor bias_gelu(const torch::Tensor& x, const torch::Tensor& bias) const = 0;
  // grad * gelu'(x + bias); may reuse grad's memory.
  virtual torch::Tensor bias_gelu_backward(const torch::Tensor& grad, const torch::Tensor& x,
                                           const torch::Tensor& bias) const = 0;
};

const Primitives& aten_primitives();
// The op's kernels (stochastic: the atomic layer-norm backward where that op is built); null
// in a build without them.
const Primitives* cuda_primitives(bool stochastic);
// Whether the kernels take these sizes (rows of a multiple of 4 elements, within their limits).
bool cuda_kernels_take(int64_t hidden, int64_t intermediate, int64_t seq);

// The dropout factors (0 or 1 / (1 - ratio)) of a tensor of n elements, as fp32 on the host.
torch::Tensor dropout_factors(int64_t n, const DropoutSite& site);

}  // namespace deepspeed::ops::transformer_detail
