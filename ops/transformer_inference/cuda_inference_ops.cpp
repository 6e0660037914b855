// The transformer_inference functions on the op's CUDA kernels, with outputs from torch's
// caching allocator and launches on torch's current stream (so that they are captured into a
// CUDA graph together with the GEMMs around them).
#include <deepspeed/ops_config.h>

#include "transformer_inference/cuda_inference_ops.h"

#include <stdexcept>

#if DEEPSPEED_OP_TRANSFORMER_INFERENCE_BUILT
#include <ATen/cuda/CUDAContext.h>

#include "cuda/transformer_inference/inference_kernels.h"
#endif

namespace deepspeed::ops::transformer_inference {

bool cuda_kernels_built() { return DEEPSPEED_OP_TRANSFORMER_INFERENCE_BUILT != 0; }

#if DEEPSPEED_OP_TRANSFORMER_INFERENCE_BUILT
namespace {

namespace k = ::deepspeed::ops::cuda::transformer_inference;

cuda::DType kernel_dtype(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kHalf: return cuda::DType::Float16;
    case torch::kBFloat16: return cuda::DType::BFloat16;
    default: return cuda::DType::Float32;
  }
}

cudaStream_t stream() { return at::cuda::getCurrentCUDAStream().stream(); }

const void* ptr_or_null(const torch::Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

k::DecodeCache decode_cache(const torch::Tensor& cache_k, const torch::Tensor& cache_v, const torch::Tensor& length,
                            const torch::Tensor& pads, int64_t batch) {
  TORCH_CHECK(cache_k.is_contiguous() && cache_v.is_contiguous(), "transformer_inference: the KV cache must be contiguous");
  TORCH_CHECK(length.scalar_type() == torch::kLong && pads.scalar_type() == torch::kLong && pads.is_contiguous(),
              "transformer_inference: length and pads must be int64 device tensors");
  TORCH_CHECK(cache_k.size(2) <= k::kMaxDecodeTokens && cache_k.size(3) <= k::kMaxHeadDim,
              "transformer_inference: the decode kernels take at most ", k::kMaxDecodeTokens, " cache slots and heads of ",
              k::kMaxHeadDim, "; the cache is ", cache_k.sizes());
  k::DecodeCache c;
  c.k = cache_k.data_ptr();
  c.v = cache_v.data_ptr();
  c.batch = batch;
  c.heads = cache_k.size(1);
  c.max_tokens = cache_k.size(2);
  c.head_dim = cache_k.size(3);
  c.length = length.data_ptr<int64_t>();
  c.pads = pads.data_ptr<int64_t>();
  return c;
}

}  // namespace

torch::Tensor cuda_add_residual_norm(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& bias,
                                     const torch::Tensor& weight, const torch::Tensor& norm_bias, double eps,
                                     NormKind kind) {
  const int64_t cols = residual.size(-1), rows = residual.numel() / cols;
  auto y = torch::empty_like(residual);
  k::add_residual_norm(kernel_dtype(residual), residual.data_ptr(), x.data_ptr(), ptr_or_null(bias), weight.data_ptr(),
                       ptr_or_null(norm_bias), y.data_ptr(), rows, cols, static_cast<float>(eps),
                       kind == NormKind::RMSNorm, stream());
  return y;
}

torch::Tensor cuda_bias_activation(const torch::Tensor& x, const torch::Tensor& bias, Activation activation) {
  const bool gated = activation == Activation::GatedSilu;
  const int64_t in_cols = x.size(-1), rows = x.numel() / in_cols, cols = gated ? in_cols / 2 : in_cols;
  auto shape = x.sizes().vec();
  shape.back() = cols;
  auto y = torch::empty(shape, x.options());
  k::bias_activation(kernel_dtype(x), x.data_ptr(), ptr_or_null(bias), y.data_ptr(), rows, cols, gated, stream());
  return y;
}

torch::Tensor cuda_decode_qkv(const torch::Tensor& qkv, const torch::Tensor& length, const torch::Tensor& pads,
                              torch::Tensor& cache_k, torch::Tensor& cache_v, double rope_theta) {
  const int64_t b = qkv.size(0);
  const auto c = decode_cache(cache_k, cache_v, length, pads, b);
  auto q = torch::empty({b, c.heads, c.head_dim}, qkv.options());
  k::decode_qkv(kernel_dtype(qkv), qkv.data_ptr(), q.data_ptr(), c, static_cast<float>(rope_theta), stream());
  return q;
}

torch::Tensor cuda_decode_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                                    const torch::Tensor& pads, const torch::Tensor& length) {
  const int64_t b = q.size(0);
  const auto c = decode_cache(cache_k, cache_v, length, pads, b);
  auto out = torch::empty({b, c.heads * c.head_dim}, q.options());
  auto workspace = torch::empty({k::decode_attention_workspace(c)}, q.options().dtype(torch::kFloat));
  k::decode_attention(kernel_dtype(q), q.data_ptr(), out.data_ptr(), workspace.data_ptr<float>(), c, stream());
  return out;
}

#else

namespace {
[[noreturn]] void not_built() {
  throw std::logic_error("transformer_inference: this build has no CUDA kernels (DS_BUILD_TRANSFORMER_INFERENCE)");
}
}  // namespace

torch::Tensor cuda_add_residual_norm(torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                     const torch::Tensor&, double, NormKind) {
  not_built();
}
torch::Tensor cuda_bias_activation(const torch::Tensor&, const torch::Tensor&, Activation) { not_built(); }
torch::Tensor cuda_decode_qkv(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, torch::Tensor&,
                              torch::Tensor&, double) {
  not_built();
}
torch::Tensor cuda_decode_attention(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                    const torch::Tensor&, const torch::Tensor&) {
  not_built();
}

#endif

}  // namespace deepspeed::ops::transformer_inference
