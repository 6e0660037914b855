// The transformer_inference op's functions: each one takes the fused CUDA kernel
// (cuda_inference_ops.cpp) for CUDA tensors the kernels handle, and the ATen path otherwise.
// The ATen path is written as the models it replaces compute (LayerNorm, GELU with tanh, a
// masked softmax), so that on the CPU in fp32 it agrees with them to rounding.
#include "transformer_inference/inference_ops.h"

#include <cmath>
#include <limits>

#include <deepspeed/torch_compat.h>

#include "transformer_inference/cuda_inference_ops.h"

namespace deepspeed::ops::transformer_inference {
namespace {

bool use_kernels(const torch::Tensor& t) {
  return cuda_kernels_built() && t.is_cuda() &&
         (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kHalf || t.scalar_type() == torch::kBFloat16);
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  // As LLaMA's RMSNorm: the mean square in fp32, the result back in x's dtype, then the weight.
  auto xf = x.to(torch::kFloat);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x [B, T, H, D] rotated by its positions [B, T] (LLaMA's rotate-half convention).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& positions, double theta) {
  const int64_t d = x.size(-1);
  const auto fp32 = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
  auto inv_freq = torch::pow(theta, -torch::arange(0, d, 2, fp32) / static_cast<double>(d));
  auto freqs = positions.to(torch::kFloat).unsqueeze(-1) * inv_freq;  // [B, T, D/2]
  auto angles = torch::cat({freqs, freqs}, -1).unsqueeze(2);           // [B, T, 1, D]
  auto cos = angles.cos().to(x.scalar_type()), sin = angles.sin().to(x.scalar_type());
  return x * cos + rotate_half(x) * sin;
}

// Masked softmax attention of q [B, H, T, D] over keys and values [B, H, L, D]; `allowed`
// [B, 1, T, L] bool. Scores and the softmax in fp32; the output in q's dtype, [B, T, H * D].
torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& allowed) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat) * scale;
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  auto out = torch::matmul(torch::softmax(scores, -1).to(q.scalar_type()), v);  // [B, H, T, D]
  return out.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
}

}  // namespace

torch::Tensor norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                   NormKind kind) {
  if (kind == NormKind::RMSNorm) return rms_norm(x, weight, eps);
  return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

torch::Tensor add_residual_norm(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& bias,
                                const torch::Tensor& weight, const torch::Tensor& norm_bias, double eps,
                                NormKind kind, bool fused) {
  if (fused && use_kernels(residual) && residual.is_contiguous() && x.is_contiguous()) {
    return cuda_add_residual_norm(residual, x, bias, weight, norm_bias, eps, kind);
  }
  // The model's order: (x + bias) first (its linear layer's output), then the residual add.
  residual.add_(bias.defined() ? x + bias : x);
  return norm(residual, weight, norm_bias, eps, kind);
}

torch::Tensor bias_activation(const torch::Tensor& x, const torch::Tensor& bias, Activation activation,
                              bool fused) {
  if (fused && use_kernels(x) && x.is_contiguous()) return cuda_bias_activation(x, bias, activation);
  auto y = bias.defined() ? x + bias : x;
  if (activation == Activation::GeluTanh) return torch::gelu(y, "tanh");
  const int64_t f = y.size(-1) / 2;
  return torch::silu(y.narrow(-1, 0, f)) * y.narrow(-1, f, f);
}

torch::Tensor prefill_qkv(const torch::Tensor& qkv, const torch::Tensor& positions, torch::Tensor& cache_k,
                          torch::Tensor& cache_v, int64_t start, double rope_theta) {
  const int64_t b = qkv.size(0), t = qkv.size(1), h = cache_k.size(1), d = cache_k.size(3);
  const auto parts = qkv.view({b, t, 3, h, d}).unbind(2);  // each [B, T, H, D]
  auto q = parts[0], k = parts[1];
  if (rope_theta > 0) {
    q = apply_rotary(q, positions, rope_theta);
    k = apply_rotary(k, positions, rope_theta);
  }
  cache_k.narrow(0, 0, b).narrow(2, start, t).copy_(k.transpose(1, 2));
  cache_v.narrow(0, 0, b).narrow(2, start, t).copy_(parts[2].transpose(1, 2));
  return q.transpose(1, 2);
}

torch::Tensor prefill_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                                const torch::Tensor& pads, int64_t start, bool fused) {
  const int64_t b = q.size(0), t = q.size(2), keys = start + t;
  const auto k = cache_k.narrow(0, 0, b).narrow(2, 0, keys), v = cache_v.narrow(0, 0, b).narrow(2, 0, keys);
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(q.device());
  auto query_slot = (torch::arange(t, long_opts) + start).view({1, 1, t, 1});
  auto key_slot = torch::arange(keys, long_opts).view({1, 1, 1, keys});
  auto first = pads.view({b, 1, 1, 1});
  // A padding query attends to itself only, so that its softmax is defined (its output is
  // never used).
  auto allowed = key_slot.le(query_slot).logical_and(key_slot.ge(first)).logical_or(key_slot.eq(query_slot));
#if DS_TORCH_AT_LEAST(2, 0)
  // Fused on CUDA: LibTorch's scaled_dot_product_attention never holds the [T, L] scores of
  // every head at once.
  if (fused && use_kernels(q)) {
    return at::scaled_dot_product_attention(q, k, v, allowed)
        .transpose(1, 2)
        .reshape({b, t, q.size(1) * q.size(3)});
  }
#endif
  (void)fused;
  return masked_attention(q, k, v, allowed);
}

torch::Tensor decode_qkv(const torch::Tensor& qkv, const torch::Tensor& length, const torch::Tensor& pads,
                         torch::Tensor& cache_k, torch::Tensor& cache_v, double rope_theta, bool fused) {
  if (fused && use_kernels(qkv) && qkv.is_contiguous()) return cuda_decode_qkv(qkv, length, pads, cache_k, cache_v, rope_theta);
  const int64_t slot = length.item<int64_t>();
  const auto positions = (slot - pads).view({-1, 1});
  return prefill_qkv(qkv.unsqueeze(1), positions, cache_k, cache_v, slot, rope_theta).squeeze(2);
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                               const torch::Tensor& pads, const torch::Tensor& length, bool fused) {
  if (fused && use_kernels(q) && q.is_contiguous()) return cuda_decode_attention(q, cache_k, cache_v, pads, length);
  const int64_t slot = length.item<int64_t>();
  return prefill_attention(q.unsqueeze(2), cache_k, cache_v, pads, slot, false).squeeze(1);
}

}  // namespace deepspeed::ops::transformer_inference
