#include "runtime/step/optimizer_wrapper.h"

#include <torch/torch.h>

#include "runtime/step/precision.h"

namespace deepspeed {

OptimizerWrapper::StepOutcome OptimizerWrapper::step(double gradient_clipping) {
  torch::NoGradGuard no_grad;
  StepOutcome out;
  begin_step();
  const bool want_norm = norm_wanted(gradient_clipping);
  auto verdict = check_gradients(want_norm);
  if (verdict.nonfinite) {
    out.nonfinite = true;
    zero_grad();
    return out;
  }
  // DeepSpeed unscales with the scale after its update (on a growth step, the doubled one),
  // but reports the norm in terms of the scale the gradients were computed with.
  const double prev_scale = scaler_.scale();
  out.messages = scaler_.update(verdict.overflow);
  if (verdict.overflow) {
    zero_grad();
    return out;
  }
  auto sq = verdict.squared_norm;
  if (!sq.defined() && want_norm) sq = global_squared_norm();
  torch::Tensor grad_scale;
  if (sq.defined()) {
    out.grad_norm = sq.to(torch::kFloat64).sqrt() / prev_scale;
    grad_scale = unscale_and_clip_factor(sq, scaler_.scale(), gradient_clipping);
  } else {
    grad_scale = torch::scalar_tensor(1.0 / scaler_.scale(), torch::kFloat64);
  }
  update(grad_scale);
  zero_grad();
  write_model_copies();
  out.applied = true;
  return out;
}

int64_t optimizer_state_bytes(const Optimizer& optimizer) {
  int64_t total = 0;
  size_t index = 0;
  for (const auto& g : optimizer.param_groups()) {
    for (const auto& p : g.params) {
      if (index < optimizer.state().size()) {
        for (const auto& [key, t] : optimizer.state()[index]) {
          if (t.defined() && t.numel() == p.numel() && t.numel() > 1) {
            total += t.numel() * static_cast<int64_t>(t.element_size());
          }
        }
      }
      ++index;
    }
  }
  return total;
}

}  // namespace deepspeed
