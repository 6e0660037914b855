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
#include <set>
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
  // Booleans are stored as 0.0 / 1.0.
  std::map<std::string, double> extra;
  // Hyper-parameters this group sets itself, by their torch/DeepSpeed key ("lr",
  // "weight_decay", "betas", "eps", "momentum", or an `extra` key). make_optimizer keeps
  // these and fills every other key from the config's params (or the algorithm's default):
  // as in torch, where a client param-group dict wins over the optimizer's defaults.
  // Empty (the default): the config's params apply to every group.
  std::set<std::string> overrides;
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {}
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every tensor that has a defined gradient. No autograd is recorded.
  virtual void step() = 0;
  // One update from gradients the caller holds (the mixed-precision and ZeRO wrappers):
  // grads[i] is the gradient of the i-th tensor in group order (any float dtype; undefined
  // skips the tensor; an fp32 one may be scaled in place), multiplied by grad_scale first (a
  // 0-dim float64 tensor, on the CPU or on the tensors' GPU, where a factor computed there
  // needs no synchronisation); copies[i],
  // when `copies` is not empty and it is defined, receives the updated tensor in its own dtype
  // (a half-precision model weight). The default stores each gradient as the tensor's .grad()
  // (in place when it is that tensor already), calls step() and copies; Adam and Lamb do it
  // all in one pass on the GPU (ops/cuda), without the fp32 gradient copies.
  virtual void step_from(const std::vector<torch::Tensor>& grads, const torch::Tensor& grad_scale,
                         const std::vector<torch::Tensor>& copies);
  void step_from(const std::vector<torch::Tensor>& grads, double grad_scale,
                 const std::vector<torch::Tensor>& copies);
  // DeepSpeed's name of the algorithm: "Adam", "AdamW", "SGD", "Lamb", "Adagrad", "Lion".
  virtual std::string name() const = 0;
  // True when the group's momentum is `momentum` (SGD), false when it is betas[0].
  virtual bool uses_momentum() const { return false; }
  // True when the algorithm has `betas` among its hyper-parameters (torch's "betas" in
  // optimizer.defaults): Adam, AdamW, Lamb, Lion. OneCycle cycles betas[0] only then.
  virtual bool has_betas() const { return !uses_momentum(); }
  // The Python class DeepSpeed would have built ("FusedAdam", "DeepSpeedCPUAdam", "AdamW",
  // "SGD", "FusedLamb", ...), for the engine's "DeepSpeed Basic Optimizer = ..." log line.
  virtual std::string class_name() const { return name(); }

  // Whether the engine is to average the gradients over the data-parallel ranks before the next
  // step (DeepSpeed's engine.enable_backward_allreduce). The 1-bit optimizers say false while
  // they communicate themselves (after their warm-up): step() then sees this rank's own
  // gradients.
  virtual bool needs_averaged_gradients() const { return true; }
  // Called after a checkpoint replaced state() and the groups' hyper-parameters: an optimizer
  // that keeps more than state() (the 1-bit optimizers' compression errors and phase) resets it.
  virtual void state_loaded() {}

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  void zero_grad();  // sets every gradient to undefined (as .grad = None)

  // Per-tensor state in group order: state()[i] holds "exp_avg", "step", ... for tensor i.
  std::vector<std::map<std::string, torch::Tensor>>& state() { return state_; }
  const std::vector<std::map<std::string, torch::Tensor>>& state() const { return state_; }

 protected:
  // The state of tensor `index` (in group order), created empty on first use.
  std::map<std::string, torch::Tensor>& state_at(size_t index) {
    if (state_.size() <= index) state_.resize(index + 1);
    return state_[index];
  }

  std::vector<ParamGroup> groups_;
  std::vector<std::map<std::string, torch::Tensor>> state_;
};

// Builds the optimizer named by a ds_config "optimizer" section (type and params).
// Throws ConfigError naming "optimizer.type" or "optimizer.params.<key>" for anything it
// does not accept (unknown type, unknown or mistyped parameter, max_grad_norm).
//
// Every hyper-parameter of every group is written: from `params` when given there, else the
// algorithm's default (Adagrad lr 1e-2, eps 1e-10; ...), except keys in the group's
// `overrides`. `type`: DeepSpeed names case-insensitively ("adam", "AdamW", "lamb",
// "adagrad", "lion"), torch.optim names verbatim ("SGD"). Details: docs/optimizers.md.
struct OptimizerOptions {
  // ZeRO-Offload of the optimizer to the CPU: DeepSpeed then builds DeepSpeedCPUAdam /
  // DeepSpeedCPUAdagrad / DeepSpeedCPULion. Same math here; only class_name() differs.
  bool cpu_offload = false;
};
std::unique_ptr<Optimizer> make_optimizer(const std::string& type, const nlohmann::json& params,
                                          std::vector<ParamGroup> groups);
std::unique_ptr<Optimizer> make_optimizer(const std::string& type, const nlohmann::json& params,
                                          std::vector<ParamGroup> groups,
                                          const OptimizerOptions& options);

// What DeepSpeed's engine.get_lr() reports: each group's lr.
std::vector<double> get_lr(const Optimizer& optimizer);

// One group's entry of engine.get_mom(): SGD's `momentum` (one value), else the group's
// `betas` (a pair); 0.0 for an optimizer with neither (Adagrad), as DeepSpeed's
// _get_optimizer_param fills a missing key with 0.0.
struct GroupMomentum {
  bool is_pair = false;
  std::array<double, 2> values{0.0, 0.0};  // values[1] is meaningful only when is_pair
};
// What DeepSpeed's engine.get_mom() reports: per group, momentum (SGD) or betas.
std::vector<GroupMomentum> get_mom(const Optimizer& optimizer);

// Python's repr of these lists, as DeepSpeed's log lines print them:
// "[0.001]", "[(0.9, 0.999)]", "[0.9]". Floats use Python's shortest round-trip repr.
std::string python_repr(double value);
std::string python_repr(const std::vector<double>& values);
std::string python_repr(const std::vector<GroupMomentum>& values);

}  // namespace deepspeed
