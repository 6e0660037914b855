// Adagrad as DeepSpeed runs it: torch.optim.Adagrad, or DeepSpeedCPUAdagrad under
// ZeRO-Offload (same arithmetic with lr_decay = 0 and initial_accumulator_value = 0).
//
// Per tensor, t the step: g += wd·p; clr = lr / (1 + (t-1)·lr_decay); sum += g²;
// p -= clr · g / (sqrt(sum) + eps). Defaults lr 1e-2, eps 1e-10.
// An fp32 CPU tensor (contiguous, with fp32 gradient and sum) is updated by the cpu_adagrad
// op (ops/cpu/cpu_adagrad/cpu_adagrad.h: SIMD, OpenMP, one pass over memory), the same
// arithmetic up to float rounding; everything else, and every tensor when
// DS_BUILD_CPU_ADAGRAD=0, runs the torch expression. The state is the same either way.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "deepspeed/optimizer.h"

namespace deepspeed {

class Adagrad : public Optimizer {
 public:
  Adagrad(std::vector<ParamGroup> groups, bool cpu_offload)
      : Optimizer(std::move(groups)), cpu_offload_(cpu_offload) {}

  static std::unique_ptr<Optimizer> create(const nlohmann::json& params,
                                           std::vector<ParamGroup> groups,
                                           const OptimizerOptions& options);

  void step() override;
  std::string name() const override { return "Adagrad"; }
  std::string class_name() const override {
    return cpu_offload_ ? "DeepSpeedCPUAdagrad" : "Adagrad";
  }
  bool has_betas() const override { return false; }

 private:
  bool cpu_offload_;
};

}  // namespace deepspeed
