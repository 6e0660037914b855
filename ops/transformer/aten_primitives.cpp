// The transformer primitives as ATen ops, computed in fp32 and rounded to the input's dtype
// once per step (as the kernels do). The reference for the kernels, and the CPU path.
#include <cmath>

#include "cuda/common/philox.h"
#include "transformer/primitives.h"

namespace deepspeed::ops::transformer_detail {

torch::Tensor dropout_factors(int64_t n, const DropoutSite& site) {
  auto out = torch::empty({n}, torch::kFloat);
  float* f = out.data_ptr<float>();
  const float scale = 1.0f / (1.0f - site.ratio);
  for (int64_t g = 0; g < n; g += 4) {
    const philox::Uint4 r = philox::random4(site.seed, site.offset, static_cast<uint64_t>(g) >> 2);
    for (int64_t i = 0; i < 4 && g + i < n; ++i) f[g + i] = philox::to_unit(r.v[i]) >= site.ratio ? scale : 0.0f;
  }
  return out;
}

namespace {

torch::Tensor factors_like(const torch::Tensor& x, const DropoutSite& site) {
  return dropout_factors(x.numel(), site).view(x.sizes()).to(x.device());
}

constexpr double kGeluC0 = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluC1 = 0.044715;

class AtenPrimitives final : public Primitives {
 public:
  LayerNormResult layer_norm(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta,
                             double eps) const override {
    const auto xf = x.to(torch::kFloat);
    auto mean = xf.mean(-1);
    const auto centred = xf - mean.unsqueeze(-1);
    auto rstd = torch::rsqrt(centred.square().mean(-1) + eps);
    auto y = centred * rstd.unsqueeze(-1) * gamma.to(torch::kFloat) + beta.to(torch::kFloat);
    return {y.to(x.scalar_type()), mean, rstd};
  }

  LayerNormGrads layer_norm_backward(const torch::Tensor& dy, const torch::Tensor& saved, bool from_output,
                                     const torch::Tensor& gamma, const torch::Tensor& beta, const torch::Tensor& mean,
                                     const torch::Tensor& rstd, const torch::Tensor& residual_grad) const override {
    const auto g = dy.to(torch::kFloat);
    const auto w = gamma.to(torch::kFloat);
    const auto s = saved.to(torch::kFloat);
    const auto xhat = from_output ? (s - beta.to(torch::kFloat)) / w : (s - mean.unsqueeze(-1)) * rstd.unsqueeze(-1);
    const auto gw = g * w;
    auto dx = rstd.unsqueeze(-1) * (gw - gw.mean(-1, true) - xhat * (gw * xhat).mean(-1, true));
    if (residual_grad.defined()) dx = dx + residual_grad.to(torch::kFloat);
    return {dx.to(dy.scalar_type()), (g * xhat).sum(0), g.sum(0)};
  }

  std::pair<torch::Tensor, torch::Tensor> softmax_dropout(const torch::Tensor& scores, const torch::Tensor& mask,
                                                          const DropoutSite& site) const override {
    auto s = scores.to(torch::kFloat);
    if (mask.defined()) s = s + mask.to(torch::kFloat);
    // A row masked everywhere with -inf gets zeros (the kernel's choice), not NaN.
    const auto probs = torch::softmax(s, -1).nan_to_num(0.0);
    if (site.ratio <= 0.0f) return {probs.to(scores.scalar_type()), torch::Tensor()};
    const auto kept = probs.to(scores.scalar_type());
    return {kept, (probs * factors_like(probs, site)).to(scores.scalar_type())};
  }

  torch::Tensor softmax_dropout_backward(const torch::Tensor& grad_dropped, const torch::Tensor& probs, double scale,
                                         const DropoutSite& site) const override {
    auto g = grad_dropped.to(torch::kFloat);
    if (site.ratio > 0.0f) g = g * factors_like(g, site);
    const auto p = probs.to(torch::kFloat);
    return (scale * p * (g - (g * p).sum(-1, true))).to(probs.scalar_type());
  }

  torch::Tensor dropout(const torch::Tensor& x, const DropoutSite& site) const override {
    if (site.ratio <= 0.0f) return x;
    return (x.to(torch::kFloat) * factors_like(x, site)).to(x.scalar_type());
  }

  torch::Tensor bias_dropout_residual(const torch::Tensor& x, const torch::Tensor& bias,
                                      const torch::Tensor& residual, const DropoutSite& site) const override {
    auto v = x.to(torch::kFloat) + bias.to(torch::kFloat);
    if (site.ratio > 0.0f) v = v * factors_like(v, site);
    return (residual.to(torch::kFloat) + v).to(x.scalar_type());
  }

  torch::Tensor bias_gelu(const torch::Tensor& x, const torch::Tensor& bias) const override {
    const auto u = x.to(torch::kFloat) + bias.to(torch::kFloat);
    return (0.5 * u * (1.0 + torch::tanh(kGeluC0 * (u + kGeluC1 * u.pow(3))))).to(x.scalar_type());
  }

  torch::Tensor bias_gelu_backward(const torch::Tensor& grad, const torch::Tensor& x,
                                   const torch::Tensor& bias) const override {
    const auto u = x.to(torch::kFloat) + bias.to(torch::kFloat);
    const auto t = torch::tanh(kGeluC0 * (u + kGeluC1 * u.pow(3)));
    const auto d = 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t.square()) * kGeluC0 * (1.0 + 3.0 * kGeluC1 * u.square());
    return (grad.to(torch::kFloat) * d).to(grad.scalar_type());
  }
};

}  // namespace

const Primitives& aten_primitives() {
  static const AtenPrimitives primitives;
  return primitives;
}

}  // namespace deepspeed::ops::transformer_detail
