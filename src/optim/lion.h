// Lion as DeepSpeed runs it: FusedLion (GPU) / DeepSpeedCPULion (offload).
//
// Per tensor: c = β1·m + (1-β1)·g; p = p·(1 - lr·wd) - lr·sign(c); m = β2·m + (1-β2)·g.
// Weight decay is decoupled. Defaults lr 1e-3, betas (0.9, 0.999), wd 0.
// sign(0) is 0 here (the paper, torch.sign); FusedLion's kernel moves such elements by +lr.
// An fp32 CPU tensor (contiguous, with fp32 gradient and exp_avg) is updated by the cpu_lion
// op (ops/cpu/cpu_lion/cpu_lion.h: SIMD, OpenMP, one pass over memory), the same arithmetic
// up to float rounding; everything else, and every tensor when DS_BUILD_CPU_LION=0, runs the
// torch expression. The state is the same either way.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "deepspeed/optimizer.h"

namespace deepspeed {

class Lion : public Optimizer {
 public:
  Lion(std::vector<ParamGroup> groups, bool cpu_offload)
      : Optimizer(std::move(groups)), cpu_offload_(cpu_offload) {}

  static std::unique_ptr<Optimizer> create(const nlohmann::json& params,
                                           std::vector<ParamGroup> groups,
                                           const OptimizerOptions& options);

  void step() override;
  std::string name() const override { return "Lion"; }
  std::string class_name() const override { return cpu_offload_ ? "DeepSpeedCPULion" : "FusedLion"; }

 private:
  bool cpu_offload_;
};

}  // namespace deepspeed
