// The stochastic_transformer op: the layer-norm backward whose blocks add their column sums
// into dgamma/dbeta with atomics (cuda/transformer/transformer_kernels.h).
#include "cuda/transformer/layer_norm_kernels.cuh"

namespace deepspeed::ops::cuda::transformer {

void layer_norm_backward_stochastic(DType dtype, const LayerNormGrad& grad, cudaStream_t stream) {
  launch_layer_norm_backward<true>(dtype, grad, nullptr, stream);
}

}  // namespace deepspeed::ops::cuda::transformer
