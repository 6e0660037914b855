// Optimizers that the engine (and ZeRO) drive: DeepSpeed's Adam/AdamW, SGD, Lamb, Adagrad
// and Lion, with DeepSpeed's defaults and formulas.
//
// An optimizer updates tensors in place from their .grad(). The tensors may be a model's
// parameters or flat fp32 partitions that ZeRO owns; the optimizer does not care. The
// hyper-parameters live per group (as in torch.optim) so that LR schedules can write them.
// State (exp_avg, ...) is kept per tensor, in group order, and round-trips through
// state_dict()/load_state_dict() for checkpoints.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace deepspeed {

struct ParamGroup {
  std::vector<torch::Tensor> params;
  double lr = 1e-3;
  double weight_decay = 0.0;
  std::array<double, 2> betas{0.9, 0.999};    // Adam, AdamW, Lamb, Lion
  double eps = 1e-8;
  double momentum = 0.0;                      // SGD
  // Every other hyper-parameter (dampening, nesterov, bias_correction, max_coeff, ...).
  std::map<std::string, double> extra;
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {}
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every tensor that has a defined gradient. No autograd is recorded.
  virtual void step() = 0;
  // DeepSpeed's name of the algorithm: "Adam", "AdamW", "SGD", "Lamb", "Adagrad", "Lion".
  virtual std::string name() const = 0;
  // True when the group's momentum is `momentum` (SGD), false when it is betas[0].
  virtual bool uses_momentum() const { return false; }

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  void zero_grad();  // sets every gradient to undefined (as .grad = None)

  // Per-tensor state in group order: state()[i] holds "exp_avg", "step", ... for tensor i.
  std::vector<std::map<std::string, torch::Tensor>>& state() { return state_; }
  const std::vector<std::map<std::string, torch::Tensor>>& state() const { return state_; }

 protected:
  std::vector<ParamGroup> groups_;
  std::vector<std::map<std::string, torch::Tensor>> state_;
};

// Builds the optimizer named by a ds_config "optimizer" section (type and params, spec §1.4).
// Throws ConfigError naming "optimizer.type" or "optimizer.params.<key>" for anything it
// does not accept (unknown type, unknown or mistyped parameter, max_grad_norm).
std::unique_ptr<Optimizer> make_optimizer(const std::string& type, const nlohmann::json& params,
                                          std::vector<ParamGroup> groups);

}  // namespace deepspeed
