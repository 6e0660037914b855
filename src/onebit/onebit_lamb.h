// 1-bit LAMB (DeepSpeed's OnebitLamb): LAMB whose momentum, after a warm-up, is all-reduced
// with 1-bit compression (comm/compressed_allreduce.h) as one flat buffer of every tensor's
// momentum, and whose trust ratio is then frozen and adjusted by how far the frozen variance
// has drifted from a fresh one.
//
// Per tensor, t the step (no bias correction, as DeepSpeed's):
//   t = 1 (the first step() of the object): a set-up step; nothing is updated.
//   warm-up (t <= freeze_step), g averaged by the engine:
//     m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²  (at t == freeze_step: v_fresh = v)
//     update = m/(sqrt(v)+eps) + wd·p;  c = ||p||/||update|| clamped to [min_coeff, max_coeff]
//     (1 when a norm is 0);  c ≠ 1: lamb_coeff_freeze = coeff_beta·lamb_coeff_freeze + (1-coeff_beta)·c
//     p -= lr·c·update
//   compressed (after a step t >= freeze_step), g this rank's own:
//     m = (β1·m + (1-β1)·g)·scaling_coeff, all tensors' m compressed and all-reduced together,
//     then m /= scaling_coeff, where scaling_coeff = mean_q(||m_q||/sqrt(n_q)) / (||m||/sqrt(n))
//     is fixed at the first compressed step (it evens out the tensors' scales in one buffer)
//     g' = (m - β1·m_before)/(1-β1);  v_fresh = β2·v_fresh + (1-β2)·g'²
//     factor = max((sqrt(v)+eps)/(sqrt(v_fresh)+eps)), blended toward 1 by
//     ||m/(sqrt(v)+eps)||/||update|| when wd > 0, clamped to [factor_min, factor_max] and to
//     last_factor·(1 ± factor_threshold);  p -= lr·lamb_coeff_freeze·factor·update
// State: DeepSpeed's "step", "exp_avg", "exp_avg_sq", "exp_avg_sq_fresh", "lamb_coeff_freeze",
// "last_factor", "scaling_coeff". The compression errors are this rank's own and are dropped
// when a checkpoint is loaded; a checkpoint of the warm-up restarts the frozen coefficients.
#pragma once

#include <memory>
#include <vector>

#include <deepspeed/comm.h>
#include <deepspeed/optimizer.h>

#include "comm/compressed_allreduce.h"
#include "onebit/onebit_settings.h"

namespace deepspeed {

struct OneBitLambCoefficients {
  double coeff_beta = 0.9;
  double factor_max = 4.0;
  double factor_min = 0.5;
  double factor_threshold = 0.1;
};

class OneBitLamb : public Optimizer {
 public:
  OneBitLamb(std::vector<ParamGroup> groups, std::shared_ptr<comm::ProcessGroup> group, OneBitSettings settings,
             OneBitLambCoefficients coefficients);
  static std::unique_ptr<Optimizer> create(const nlohmann::json& params, std::vector<ParamGroup> groups,
                                           std::shared_ptr<comm::ProcessGroup> group);

  void step() override;
  std::string name() const override { return "OneBitLamb"; }
  std::string class_name() const override { return "OnebitLamb"; }
  bool needs_averaged_gradients() const override { return !compressing_; }
  void state_loaded() override;
  // The trust ratios of the last step, one per updated tensor (DeepSpeed's get_lamb_coeffs()).
  const std::vector<double>& lamb_coeffs() const { return lamb_coeffs_; }

 private:
  void init_state(size_t index, const torch::Tensor& param);
  void compress_momentum();

  std::shared_ptr<comm::ProcessGroup> group_;
  OneBitSettings settings_;
  OneBitLambCoefficients coefficients_;
  bool initialized_ = false;
  bool compressing_ = false;  // DeepSpeed's lamb_freeze_key
  // The flat momentum's padding up to the compressed length: DeepSpeed keeps it inside the flat
  // buffer, so what the last all-reduce wrote there is sent again.
  torch::Tensor padding_;
  comm::CompressionErrors errors_;
  std::vector<double> lamb_coeffs_;
};

}  // namespace deepspeed
