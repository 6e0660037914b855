// The transformer primitives on the op's fused CUDA kernels (cuda/transformer/), on torch's
// current stream, with outputs allocated by torch's caching allocator.
#include <deepspeed/ops_config.h>

#include "transformer/primitives.h"

#if DEEPSPEED_OP_TRANSFORMER_BUILT
#include <ATen/cuda/CUDAContext.h>

#include "cuda/transformer/transformer_kernels.h"
#endif

namespace deepspeed::ops::transformer_detail {

#if DEEPSPEED_OP_TRANSFORMER_BUILT
namespace {

namespace k = ::deepspeed::ops::cuda::transformer;

cuda::DType kernel_dtype(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kHalf: return cuda::DType::Float16;
    case torch::kBFloat16: return cuda::DType::BFloat16;
    default: return cuda::DType::Float32;
  }
}

k::Dropout kernel_dropout(const DropoutSite& s) { return k::Dropout{s.ratio, s.seed, s.offset}; }

cudaStream_t stream() { return at::cuda::getCurrentCUDAStream().stream(); }

class CudaPrimitives final : public Primitives {
 public:
  explicit CudaPrimitives(bool stochastic) : stochastic_(stochastic) {}

  LayerNormResult layer_norm(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta,
                             double eps) const override {
    const int64_t cols = x.size(-1), rows = x.numel() / cols;
    auto y = torch::empty_like(x);
    auto stats = x.new_empty({2, rows}, x.options().dtype(torch::kFloat));
    k::layer_norm_forward(kernel_dtype(x), x.data_ptr(), gamma.data_ptr(), beta.data_ptr(), y.data_ptr(),
                          stats[0].data_ptr<float>(), stats[1].data_ptr<float>(), rows, cols,
                          static_cast<float>(eps), stream());
    return {y, stats[0], stats[1]};
  }

  LayerNormGrads layer_norm_backward(const torch::Tensor& dy, const torch::Tensor& saved, bool from_output,
                                     const torch::Tensor& gamma, const torch::Tensor& beta, const torch::Tensor& mean,
                                     const torch::Tensor& rstd, const torch::Tensor& residual_grad) const override {
    const int64_t cols = dy.size(-1), rows = dy.numel() / cols;
    auto dx = torch::empty_like(dy);
    k::LayerNormGrad a;
    a.dy = dy.data_ptr();
    a.saved = saved.data_ptr();
    a.from_output = from_output;
    a.gamma = gamma.data_ptr();
    a.beta = beta.data_ptr();
    a.mean = from_output ? nullptr : mean.data_ptr<float>();
    a.rstd = rstd.data_ptr<float>();
    a.residual_grad = residual_grad.defined() ? residual_grad.data_ptr() : nullptr;
    a.dx = dx.data_ptr();
    a.rows = rows;
    a.cols = cols;
    const auto fp32 = dy.options().dtype(torch::kFloat);
#if DEEPSPEED_OP_STOCHASTIC_TRANSFORMER_BUILT
    if (stochastic_) {
      auto sums = torch::zeros({2, cols}, fp32);
      a.dgamma = sums[0].data_ptr<float>();
      a.dbeta = sums[1].data_ptr<float>();
      k::layer_norm_backward_stochastic(kernel_dtype(dy), a, stream());
      return {dx, sums[0], sums[1]};
    }
#endif
    auto sums = torch::empty({2, cols}, fp32);
    auto workspace = torch::empty({k::layer_norm_backward_workspace(rows, cols)}, fp32);
    a.dgamma = sums[0].data_ptr<float>();
    a.dbeta = sums[1].data_ptr<float>();
    k::layer_norm_backward(kernel_dtype(dy), a, workspace.data_ptr<float>(), stream());
    return {dx, sums[0], sums[1]};
  }

  std::pair<torch::Tensor, torch::Tensor> softmax_dropout(const torch::Tensor& scores, const torch::Tensor& mask,
                                                          const DropoutSite& site) const override {
    k::AttentionMask m;
    if (mask.defined()) {
      m.data = mask.data_ptr();
      // A broadcast dimension (size 1) is read at stride 0.
      m.batch_stride = mask.size(0) == 1 ? 0 : mask.stride(0);
      m.head_stride = mask.size(1) == 1 ? 0 : mask.stride(1);
      m.row_stride = mask.size(2) == 1 ? 0 : mask.stride(2);
    }
    auto probs = torch::empty_like(scores);
    torch::Tensor dropped;
    if (site.ratio > 0.0f) dropped = torch::empty_like(scores);
    k::softmax_dropout_forward(kernel_dtype(scores), scores.data_ptr(), m, 1.0f, probs.data_ptr(),
                               dropped.defined() ? dropped.data_ptr() : nullptr, scores.size(0), scores.size(1),
                               scores.size(2), scores.size(3), kernel_dropout(site), stream());
    return {probs, dropped};
  }

  torch::Tensor softmax_dropout_backward(const torch::Tensor& grad_dropped, const torch::Tensor& probs, double scale,
                                         const DropoutSite& site) const override {
    const int64_t keys = probs.size(-1);
    // In place: grad_dropped is a temporary of the backward pass.
    k::softmax_dropout_backward(kernel_dtype(probs), grad_dropped.data_ptr(), probs.data_ptr(),
                                grad_dropped.data_ptr(), static_cast<float>(scale), probs.numel() / keys, keys,
                                kernel_dropout(site), stream());
    return grad_dropped;
  }

  torch::Tensor dropout(const torch::Tensor& x, const DropoutSite& site) const override {
    if (site.ratio <= 0.0f) return x;
    auto y = torch::empty_like(x);
    k::dropout(kernel_dtype(x), x.data_ptr(), y.data_ptr(), x.numel(), kernel_dropout(site), stream());
    return y;
  }

  torch::Tensor bias_dropout_residual(const torch::Tensor& x, const torch::Tensor& bias,
                                      const torch::Tensor& residual, const DropoutSite& site) const override {
    auto out = torch::empty_like(x);
    const int64_t cols = x.size(-1);
    k::bias_dropout_residual(kernel_dtype(x), x.data_ptr(), bias.data_ptr(), residual.data_ptr(), out.data_ptr(),
                             x.numel() / cols, cols, kernel_dropout(site), stream());
    return out;
  }

  torch::Tensor bias_gelu(const torch::Tensor& x, const torch::Tensor& bias) const override {
    auto out = torch::empty_like(x);
    const int64_t cols = x.size(-1);
    k::bias_gelu_forward(kernel_dtype(x), x.data_ptr(), bias.data_ptr(), out.data_ptr(), x.numel() / cols, cols,
                         stream());
    return out;
  }

  torch::Tensor bias_gelu_backward(const torch::Tensor& grad, const torch::Tensor& x,
                                   const torch::Tensor& bias) const override {
    const int64_t cols = x.size(-1);
    k::bias_gelu_backward(kernel_dtype(x), grad.data_ptr(), x.data_ptr(), bias.data_ptr(), grad.data_ptr(),
                          x.numel() / cols, cols, stream());
    return grad;
  }

 private:
  bool stochastic_;
};

}  // namespace

const Primitives* cuda_primitives(bool stochastic) {
  static const CudaPrimitives deterministic(false), atomic(true);
  return stochastic && DEEPSPEED_OP_STOCHASTIC_TRANSFORMER_BUILT ? &atomic : &deterministic;
}

bool cuda_kernels_take(int64_t hidden, int64_t intermediate, int64_t seq) {
  return hidden % 4 == 0 && intermediate % 4 == 0 && seq % 4 == 0 && hidden <= k::kMaxLayerNormColumns &&
         seq <= k::kMaxSoftmaxColumns;
}

#else

const Primitives* cuda_primitives(bool) { return nullptr; }
bool cuda_kernels_take(int64_t, int64_t, int64_t) { return false; }

#endif

}  // namespace deepspeed::ops::transformer_detail
