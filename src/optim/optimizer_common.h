// Pieces every algorithm in src/optim shares: writing hyper-parameters into groups (keeping
// a group's own overrides), torch's argument checks, and per-tensor step counting.
#pragma once

#include <array>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "deepspeed/optimizer.h"

namespace deepspeed {

// Writes a hyper-parameter into every group that does not set it itself (ParamGroup::overrides).
class GroupWriter {
 public:
  explicit GroupWriter(std::vector<ParamGroup>& groups) : groups_(groups) {}
  void lr(double v) { each("lr", [&](ParamGroup& g) { g.lr = v; }); }
  void weight_decay(double v) { each("weight_decay", [&](ParamGroup& g) { g.weight_decay = v; }); }
  void betas(std::array<double, 2> v) { each("betas", [&](ParamGroup& g) { g.betas = v; }); }
  void eps(double v) { each("eps", [&](ParamGroup& g) { g.eps = v; }); }
  void momentum(double v) { each("momentum", [&](ParamGroup& g) { g.momentum = v; }); }
  void extra(const std::string& key, double v) {
    each(key, [&](ParamGroup& g) { g.extra[key] = v; });
  }

 private:
  template <class F>
  void each(const std::string& key, F&& set) {
    for (auto& g : groups_) {
      if (!g.overrides.count(key)) set(g);
    }
  }
  std::vector<ParamGroup>& groups_;
};

// torch.optim's argument checks (ValueError there, ConfigError here), with the key path.
void check_lr(double lr, const std::string& path);
void check_eps(double eps, const std::string& path);
void check_weight_decay(double weight_decay, const std::string& path);
void check_betas(const std::array<double, 2>& betas, const std::string& path);

// The Adam family's lr, betas, eps and weight_decay (Adam, Lamb, the 1-bit optimizers): checked
// as above (errors name "<section>.<key>") and written into the groups (GroupWriter).
void check_and_write_adam_hyperparameters(std::vector<ParamGroup>& groups, const std::string& section, double lr,
                                          const std::array<double, 2>& betas, double eps, double weight_decay);

// A group's `extra` value, or `fallback` when the group has none (a group built by hand).
double extra_or(const ParamGroup& group, const std::string& key, double fallback);

// Advances the tensor's "step" state (a float scalar tensor, as torch keeps it so that a
// checkpoint stores it as a tensor) and returns the new count.
double increment_step(std::map<std::string, torch::Tensor>& state);

// The gradient of `param` in the math type (see math_view); throws for sparse gradients.
torch::Tensor dense_grad(const torch::Tensor& param, const char* algorithm);

// A gradient step_from was given, in fp32 and multiplied by `grad_scale` (when defined). An
// fp32 gradient is scaled in place: step_from's callers discard their gradients after the
// step, and a model-sized copy is what limits the largest model under CPU offload.
torch::Tensor scaled_fp32_gradient(const torch::Tensor& grad, const torch::Tensor& grad_scale);

// The arithmetic runs in fp32 for fp16/bf16 tensors (as DeepSpeed's kernels do with their
// MATH_T; CPU LibTorch 1.13 also lacks some half kernels) and in the tensor's own type
// otherwise. math_view gives the tensor itself or an fp32 copy; write_back stores a copy's
// result into the original (nothing to do for the tensor itself).
torch::Tensor math_view(const torch::Tensor& t);
void write_back(torch::Tensor& original, const torch::Tensor& work);

}  // namespace deepspeed
