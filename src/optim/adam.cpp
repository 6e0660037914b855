#include "optim/adam.h"

#include <cmath>
#include <optional>

#include <deepspeed/ops_config.h>

#include "deepspeed/errors.h"
#include "optim/fused_cuda.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

#if DEEPSPEED_OP_CPU_ADAM_BUILT
#include "cpu/common/torch_bridge.h"
#include "cpu/cpu_adam/cpu_adam.h"
#endif

namespace deepspeed {
namespace {

// The cpu_adam op for an fp32 CPU tensor (ops/cpu/cpu_adam/cpu_adam.h): the same update as
// the FusedAdam expression in Adam::step, in one pass over memory instead of about ten.
// False, having touched nothing, where the op does not apply.
bool update_with_cpu_adam([[maybe_unused]] torch::Tensor& p,
                          [[maybe_unused]] const torch::Tensor& grad,
                          [[maybe_unused]] torch::Tensor& exp_avg,
                          [[maybe_unused]] torch::Tensor& exp_avg_sq,
                          [[maybe_unused]] const ParamGroup& group,
                          [[maybe_unused]] bool adamw_mode, [[maybe_unused]] bool bias_correction,
                          [[maybe_unused]] double step, [[maybe_unused]] double grad_scale,
                          [[maybe_unused]] const torch::Tensor& copy) {
#if DEEPSPEED_OP_CPU_ADAM_BUILT
  if (!ops::cpu_op_can_update({&p, &grad, &exp_avg, &exp_avg_sq})) return false;
  ops::AdamStep s;
  s.lr = group.lr;
  s.beta1 = group.betas[0];
  s.beta2 = group.betas[1];
  s.eps = group.eps;
  s.weight_decay = group.weight_decay;
  s.adamw_mode = adamw_mode;
  s.bias_correction = bias_correction;
  s.step = static_cast<int64_t>(step);
  s.grad_scale = grad_scale;
  // A 16-bit copy of the result (ZeRO-3's offloaded shards) is written in the same pass.
  const auto copy_type = ops::cpu_op_copy_type(copy, p.numel());
  const bool copied = copy_type != ops::CopyType::None;
  ops::adam_step(p.data_ptr<float>(), grad.data_ptr<float>(), exp_avg.data_ptr<float>(),
                 exp_avg_sq.data_ptr<float>(), p.numel(), s, copied ? copy.data_ptr() : nullptr, copy_type);
  if (copied) {
    ops::mark_written(copy);
  } else if (copy.defined()) {
    copy.detach().copy_(p);
  }
  ops::mark_written(p);
  ops::mark_written(exp_avg);
  ops::mark_written(exp_avg_sq);
  return true;
#else
  return false;  // DS_BUILD_CPU_ADAM=0: the torch expression does it
#endif
}

}  // namespace

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : Optimizer(std::move(groups)), options_(options) {}

std::string Adam::class_name() const {
  if (options_.torch_adam) return options_.adamw_mode ? "AdamW" : "Adam";
  return options_.cpu_offload ? "DeepSpeedCPUAdam" : "FusedAdam";
}

std::unique_ptr<Optimizer> Adam::create(bool adamw_type, const nlohmann::json& params,
                                        std::vector<ParamGroup> groups,
                                        const OptimizerOptions& options) {
  ParamReader reader(params, "optimizer.params", adamw_type ? "AdamW" : "Adam");
  AdamOptions adam;
  adam.torch_adam = reader.boolean("torch_adam").value_or(false);
  // As DeepSpeed: "Adam" means AdamW unless adam_w_mode is false (docs/compatibility.md).
  const bool adam_w_mode = reader.boolean("adam_w_mode").value_or(true);
  adam.adamw_mode = adamw_type || adam_w_mode;
  adam.cpu_offload = options.cpu_offload && !adam.torch_adam;

  const double lr = reader.number("lr").value_or(1e-3);
  const auto betas = reader.pair("betas").value_or(std::array<double, 2>{0.9, 0.999});
  const double eps = reader.number("eps").value_or(1e-8);
  // torch.optim.AdamW's own default is 0.01; FusedAdam's and CPUAdam's is 0.
  const double weight_decay =
      reader.number("weight_decay").value_or(adam.torch_adam && adam.adamw_mode ? 1e-2 : 0.0);
  if (reader.boolean("amsgrad").value_or(false)) {
    throw ConfigError(reader.path("amsgrad"),
                      "the AMSGrad variant is not supported (FusedAdam does not support it)");
  }
  bool bias_correction = true;
  if (adam.torch_adam) {
    // torch.optim.Adam/AdamW's own keywords that do not change the arithmetic.
    for (const char* key : {"foreach", "maximize", "capturable", "differentiable", "fused"}) {
      reader.boolean(key);
    }
    if (reader.has("maximize") && reader.boolean("maximize").value()) {
      throw ConfigError(reader.path("maximize"), "maximize is not supported");
    }
  } else {
    bias_correction = reader.boolean("bias_correction").value_or(true);
    reader.boolean("set_grad_none");          // FusedAdam: zero_grad sets None (always, here)
    reader.boolean("fp32_optimizer_states");  // DeepSpeedCPUAdam: states are kept fp32
  }
  reader.reject_unknown();

  check_and_write_adam_hyperparameters(groups, "optimizer.params", lr, betas, eps, weight_decay);
  GroupWriter writer(groups);
  if (!adam.torch_adam) writer.extra("bias_correction", bias_correction ? 1.0 : 0.0);
  return std::make_unique<Adam>(std::move(groups), adam);
}

void Adam::step() { update(nullptr, torch::Tensor(), nullptr); }

void Adam::step_from(const std::vector<torch::Tensor>& grads, const torch::Tensor& grad_scale,
                     const std::vector<torch::Tensor>& copies) {
  if (options_.torch_adam) {
    Optimizer::step_from(grads, grad_scale, copies);
    return;
  }
  update(&grads, grad_scale, copies.empty() ? nullptr : &copies);
}

// The fused CUDA op takes a whole group in one pass when every tensor of it suits the op and
// all share one step count (always, unless a checkpoint said otherwise); else each tensor
// takes the CPU op or the torch expression.
bool Adam::update_group_fused(ParamGroup& group, size_t first_index, const std::vector<torch::Tensor>* grads,
                              const torch::Tensor& grad_scale, const std::vector<torch::Tensor>* copies) {
  if (options_.torch_adam || !fused_cuda_detail::adam_available()) return false;
  std::vector<fused_cuda_detail::Item> items;
  std::optional<double> step;
  size_t index = first_index;
  for (auto& p : group.params) {
    const size_t i = index++;
    const torch::Tensor grad = grads ? (*grads)[i] : p.grad();
    if (!grad.defined()) continue;
    fused_cuda_detail::Item item{p, grad, torch::Tensor(), torch::Tensor(), copies ? (*copies)[i] : torch::Tensor()};
    auto& state = state_at(i);
    if (state.count("exp_avg")) {
      item.exp_avg = state["exp_avg"];
      item.exp_avg_sq = state["exp_avg_sq"];
    } else {
      item.exp_avg = item.exp_avg_sq = p;  // stand-ins of the right kind for the check below
    }
    if (!fused_cuda_detail::can_update(item)) return false;
    const auto it = state.find("step");
    const double next = (it == state.end() || !it->second.defined()) ? 1.0 : it->second.item<double>() + 1.0;
    if (step && *step != next) return false;
    step = next;
    items.push_back(std::move(item));
  }
  if (items.empty()) return true;
  index = first_index;
  size_t k = 0;
  for (auto& p : group.params) {
    const size_t i = index++;
    const torch::Tensor grad = grads ? (*grads)[i] : p.grad();
    if (!grad.defined()) continue;
    auto& state = state_at(i);
    if (!state.count("exp_avg")) {
      state["exp_avg"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      state["exp_avg_sq"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    }
    increment_step(state);
    items[k].exp_avg = state["exp_avg"];
    items[k].exp_avg_sq = state["exp_avg_sq"];
    ++k;
  }
  const bool bias_correction = extra_or(group, "bias_correction", 1.0) != 0.0;
  fused_cuda_detail::AdamScalars s{};
  s.lr = group.lr;
  s.beta1 = group.betas[0];
  s.beta2 = group.betas[1];
  s.eps = group.eps;
  s.weight_decay = group.weight_decay;
  s.bias_correction1 = bias_correction ? 1.0 - std::pow(group.betas[0], *step) : 1.0;
  s.bias_correction2 = bias_correction ? 1.0 - std::pow(group.betas[1], *step) : 1.0;
  s.grad_scale = grad_scale;  // undefined: 1
  s.adamw_mode = options_.adamw_mode;
  fused_cuda_detail::adam(items, s);
  return true;
}

// grad_scale: undefined for step() (no scaling).
void Adam::update(const std::vector<torch::Tensor>* grads, const torch::Tensor& grad_scale,
                  const std::vector<torch::Tensor>* copies) {
  torch::NoGradGuard no_grad;
  size_t index = 0;
  for (auto& group : groups_) {
    const size_t first_index = index;
    index += group.params.size();
    if (update_group_fused(group, first_index, grads, grad_scale, copies)) continue;
    const double lr = group.lr;
    const double wd = group.weight_decay;
    const auto [beta1, beta2] = group.betas;
    const bool bias_correction =
        options_.torch_adam || extra_or(group, "bias_correction", 1.0) != 0.0;
    size_t i = first_index;
    for (auto& p : group.params) {
      const size_t tensor = i++;
      auto& state = state_at(tensor);
      torch::Tensor grad;
      // An fp32 CPU gradient's factor goes into the cpu_adam op's pass (no pass of its own).
      std::optional<double> op_scale;
      if (grads) {  // step_from with a tensor the fused op did not take: fp32, scaled
        const torch::Tensor& given = (*grads)[tensor];
        if (!given.defined()) continue;
        if (!options_.torch_adam && grad_scale.defined() && grad_scale.is_cpu() && given.is_cpu() &&
            given.scalar_type() == torch::kFloat32) {
          grad = given;
          op_scale = grad_scale.item<double>();
        } else {
          grad = scaled_fp32_gradient(given, grad_scale);
        }
      } else {
        if (!p.grad().defined()) continue;
        grad = dense_grad(p, "Adam");
      }
      if (!state.count("exp_avg")) {
        state["exp_avg"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
        state["exp_avg_sq"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      const double step = increment_step(state);
      if (!options_.torch_adam &&
          update_with_cpu_adam(p, grad, state["exp_avg"], state["exp_avg_sq"], group,
                               options_.adamw_mode, bias_correction, step, op_scale.value_or(1.0),
                               copies ? (*copies)[tensor] : torch::Tensor())) {
        continue;
      }
      if (op_scale) grad = scaled_fp32_gradient(grad, grad_scale);
      torch::Tensor w = math_view(p);
      torch::Tensor exp_avg = math_view(state["exp_avg"]);
      torch::Tensor exp_avg_sq = math_view(state["exp_avg_sq"]);
      const double bc1 = bias_correction ? 1.0 - std::pow(beta1, step) : 1.0;
      const double bc2 = bias_correction ? 1.0 - std::pow(beta2, step) : 1.0;

      if (options_.torch_adam) {
        if (options_.adamw_mode) {
          w.mul_(1.0 - lr * wd);
        } else if (wd != 0.0) {
          grad = grad.add(w, wd);
        }
        exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
        const torch::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(group.eps);
        w.addcdiv_(exp_avg, denom, -lr / bc1);
      } else {
        // FusedAdam's kernel (multi_tensor_adam.cu), element for element.
        if (!options_.adamw_mode && wd != 0.0) grad = grad.add(w, wd);
        exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
        torch::Tensor update = (exp_avg / bc1).div_((exp_avg_sq / bc2).sqrt_().add_(group.eps));
        if (options_.adamw_mode && wd != 0.0) update.add_(w, wd);
        w.add_(update, -lr);
      }
      write_back(p, w);
      write_back(state["exp_avg"], exp_avg);
      write_back(state["exp_avg_sq"], exp_avg_sq);
      if (copies && (*copies)[tensor].defined()) (*copies)[tensor].detach().copy_(p);
    }
  }
}

}  // namespace deepspeed
