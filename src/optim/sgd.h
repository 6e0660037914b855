// torch.optim.SGD, which DeepSpeed builds for the config type "SGD" (spelled exactly so).
//
// Per tensor: d = g (+ wd·p); with momentum μ: buf = d on the first step, else
// buf = μ·buf + (1 - dampening)·d; d = d + μ·buf (nesterov) or buf; p -= lr·d
// (p += lr·d with maximize).
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "deepspeed/optimizer.h"

namespace deepspeed {

class Sgd : public Optimizer {
 public:
  using Optimizer::Optimizer;

  static std::unique_ptr<Optimizer> create(const nlohmann::json& params,
                                           std::vector<ParamGroup> groups);

  void step() override;
  std::string name() const override { return "SGD"; }
  bool uses_momentum() const override { return true; }
  bool has_betas() const override { return false; }
};

}  // namespace deepspeed
