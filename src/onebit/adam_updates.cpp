#include "onebit/adam_updates.h"

#include <cmath>

namespace deepspeed::onebit_detail {
namespace {

bool cpu_fp32(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
}

}  // namespace

// m = β1·m + (1-β1)·g. On CPU fp32 one pass (the step's time goes to such passes once the
// network is no longer what it waits for); the same float arithmetic as the expression.
void update_momentum(torch::Tensor& m, const torch::Tensor& g, double beta1) {
  if (!cpu_fp32(m) || !cpu_fp32(g)) {
    m.mul_(beta1).add_(g, 1.0 - beta1);
    return;
  }
  const auto b = static_cast<float>(beta1), a = static_cast<float>(1.0 - beta1);
  float* mp = m.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  for (int64_t i = 0, n = m.numel(); i < n; ++i) mp[i] = mp[i] * b + a * gp[i];
}

// p -= lr·(m/(sqrt(v)+eps) + weight_decay·p), in one pass on CPU fp32.
void update_parameter(torch::Tensor& p, const torch::Tensor& m, const torch::Tensor& v, const ParamGroup& group) {
  if (!cpu_fp32(p) || !cpu_fp32(m) || !cpu_fp32(v)) {
    auto update = m / (v.sqrt() + group.eps);
    if (group.weight_decay > 0.0) update.add_(p, group.weight_decay);
    p.add_(update, -group.lr);
    return;
  }
  const auto eps = static_cast<float>(group.eps), lr = static_cast<float>(-group.lr);
  const auto wd = static_cast<float>(group.weight_decay);
  const bool decay = group.weight_decay > 0.0;
  float* pp = p.data_ptr<float>();
  const float* mp = m.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  for (int64_t i = 0, n = p.numel(); i < n; ++i) {
    float update = mp[i] / (std::sqrt(vp[i]) + eps);
    if (decay) update = update + wd * pp[i];
    pp[i] = pp[i] + lr * update;
  }
}

}  // namespace deepspeed::onebit_detail
