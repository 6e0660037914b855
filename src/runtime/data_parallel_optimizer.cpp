#include "runtime/data_parallel_optimizer.h"

#include <cmath>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <deepspeed/errors.h>

#include "runtime/step/precision.h"

namespace deepspeed {

DataParallelOptimizer::DataParallelOptimizer(std::vector<torch::Tensor> parameters,
                                             std::shared_ptr<comm::ProcessGroup> group,
                                             const DeepSpeedConfig& config, std::shared_ptr<Optimizer> optimizer,
                                             ModelParallelGradients model_parallel, ExpertParameters experts)
    : OptimizerWrapper(loss_scaler_options(config, LossScaleAlgorithm::Plain,
                                           /*fused=*/!optimizer || (optimizer->name() != "Lamb" &&
                                                                    optimizer->name() != "OneBitLamb")),
                       std::move(model_parallel)),
      parameters_(std::move(parameters)),
      group_(std::move(group)),
      optimizer_(std::move(optimizer)),
      fp16_(config.fp16_enabled()),
      check_overflow_(config.fp16_enabled() || (config.bf16_enabled() && config.bf16.check_grad_overflow)),
      check_nonfinite_(!config.fp16_enabled() && !config.bf16_enabled() && config.nonfinite_gradients != "apply") {
  auto options = reducer_options(config);
  if (!group_->supports(options.comm_dtype)) options.comm_dtype = torch::kFloat32;
  auto make_reducer = [&](std::vector<torch::Tensor> params, std::shared_ptr<comm::ProcessGroup> over,
                          double divisor) {
    const std::vector<int64_t> groups(params.size(), 0);
    std::vector<int64_t> numels;
    for (const auto& p : params) numels.push_back(p.numel());
    auto o = options;
    o.divisor = divisor;
    auto plan = plan_buckets(numels, groups, bucket_elements(config, o.comm_dtype), 1);
    return std::make_unique<GradientReducer>(std::move(params), std::move(over), o, std::move(plan));
  };
  std::unordered_set<const void*> expert_tensors;
  for (auto& e : experts) {
    for (const auto& p : e.parameters) expert_tensors.insert(p.unsafeGetTensorImpl());
    experts_.push_back({make_reducer(e.parameters, e.expert_data_parallel, static_cast<double>(group_->size())),
                        e.parameters, e.expert_parallel});
  }
  std::vector<torch::Tensor> replicated;
  for (const auto& p : parameters_) {
    is_expert_.push_back(expert_tensors.count(p.unsafeGetTensorImpl()) > 0);
    if (!is_expert_.back()) replicated.push_back(p);
  }
  reducer_ = make_reducer(std::move(replicated), group_, 0.0);

  std::unordered_map<const void*, int64_t> index;
  for (int64_t i = 0; i < static_cast<int64_t>(parameters_.size()); ++i) {
    index[parameters_[i].unsafeGetTensorImpl()] = i;
  }
  if (optimizer_) {
    for (const auto& g : optimizer_->param_groups()) {
      for (const auto& p : g.params) {
        auto it = index.find(p.unsafeGetTensorImpl());
        optimizer_order_.push_back(it == index.end() ? -1 : it->second);
      }
    }
  }
  if (model_dtype(config) == torch::kFloat32 || !optimizer_) return;
  // Half-precision model: the optimizer steps fp32 copies (made from the half values, as
  // DeepSpeed makes them after module.half()).
  torch::NoGradGuard no_grad;
  masters_.resize(parameters_.size());
  for (auto& g : optimizer_->param_groups()) {
    for (auto& p : g.params) {
      auto it = index.find(p.unsafeGetTensorImpl());
      if (it == index.end()) {
        throw EngineError("the optimizer holds a tensor that is not a trainable parameter of the model; with fp16/bf16 "
                          "every optimizer parameter must be one of the module's parameters");
      }
      auto& m = masters_[it->second];
      if (!m.defined()) m = parameters_[it->second].detach().to(torch::kFloat32).clone();
      p = m;
    }
  }
}

std::string DataParallelOptimizer::name() const {
  if (masters_.empty()) return optimizer_ ? optimizer_->class_name() : "None";
  if (!fp16_) return "BF16_Optimizer";
  return loss_scaler().options().fused ? "FP16_Optimizer" : "FP16_UnfusedOptimizer";
}

void DataParallelOptimizer::before_backward(bool boundary) {
  // The 1-bit optimizers, past their warm-up, average (compressed) what they need themselves.
  if (boundary) local_gradients_ = optimizer_ && !optimizer_->needs_averaged_gradients();
  reducer_->prepare(boundary && !local_gradients_);
  for (auto& e : experts_) e.reducer->prepare(boundary);
}

void DataParallelOptimizer::after_backward(bool /*boundary*/) {
  reducer_->finalize();
  for (auto& e : experts_) e.reducer->finalize();
}

double DataParallelOptimizer::last_communication_wait() const {
  double total = reducer_->last_wait_seconds();
  for (const auto& e : experts_) total += e.reducer->last_wait_seconds();
  return total;
}

bool DataParallelOptimizer::agreed(bool local) const {
  // Experts' gradients, and gradients the engine did not average, differ between the ranks of
  // the data-parallel group: agree over it.
  if (experts_.empty() && !local_gradients_) return model_parallel_.any(local);
  auto flag = torch::full({1}, local ? 1.0f : 0.0f, torch::TensorOptions().device(group_->device()));
  group_->all_reduce(flag, comm::ReduceOp::Max);
  return model_parallel_.any(flag.item<float>() > 0.0f);
}

bool DataParallelOptimizer::norm_wanted(double gradient_clipping) const {
  return !masters_.empty() || gradient_clipping > 0.0;
}

// Gradients are already averaged, hence equal on every rank of the data-parallel group: the
// local norm is the replica's (summed over its model-parallel ranks), and every rank reaches
// the same verdict on NaN/inf. The norm is computed where the gradients are and read back
// only for the fp32 verdict (a GPU then waits).
OptimizerWrapper::GradientVerdict DataParallelOptimizer::check_gradients(bool norm_wanted) {
  GradientVerdict v;
  const auto grads = gradients();
  v.overflow = check_overflow_ && agreed(has_inf_or_nan(grads));
  if (norm_wanted && !v.overflow) v.squared_norm = global_squared_norm();
  // fp32: with the norm at hand a non-finite norm is the verdict (no second pass); without it,
  // one pass summed in double, so that large finite gradients cannot overflow the check.
  // Local gradients give each rank its own norm: the verdict is then agreed like the check's.
  if (check_nonfinite_) {
    if (v.squared_norm.defined() && !local_gradients_) {
      v.nonfinite = !std::isfinite(v.squared_norm.item<double>());
    } else {
      v.nonfinite = agreed(v.squared_norm.defined() ? !std::isfinite(v.squared_norm.item<double>())
                                                    : has_inf_or_nan(grads, torch::kFloat64));
    }
  }
  return v;
}

// Every element once: the replicated gradients as they are (equal on every data-parallel
// rank), each expert group's summed over the ranks that hold the other experts. DeepSpeed
// averages the ranks' norms instead (docs/compatibility.md).
torch::Tensor DataParallelOptimizer::global_squared_norm() {
  std::vector<torch::Tensor> counted;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!is_expert_[i] && model_parallel_.counts(parameters_[i])) counted.push_back(parameters_[i].grad());
  }
  auto sq = squared_norm(counted, group_->device());
  for (const auto& e : experts_) {
    std::vector<torch::Tensor> grads;
    for (const auto& p : e.parameters) {
      if (model_parallel_.counts(p)) grads.push_back(p.grad());
    }
    auto expert_sq = squared_norm(grads, group_->device()).reshape({1});
    e.expert_parallel->all_reduce(expert_sq);
    sq = sq + expert_sq.reshape({}).to(sq.scalar_type());
  }
  model_parallel_.sum(sq);
  return sq;
}

void DataParallelOptimizer::update(const torch::Tensor& grad_scale) {
  // Gradients (and, with masters, the model weights to write back) in the optimizer's order.
  std::vector<torch::Tensor> ordered_grads;
  std::vector<torch::Tensor> copies;
  ordered_grads.reserve(optimizer_order_.size());
  size_t k = 0;
  for (const auto& g : optimizer_->param_groups()) {
    for (const auto& p : g.params) {
      const int64_t i = optimizer_order_[k++];
      ordered_grads.push_back(i < 0 ? p.grad() : parameters_[i].grad());
      if (!masters_.empty()) copies.push_back(i < 0 ? torch::Tensor() : parameters_[i]);
    }
  }
  optimizer_->step_from(ordered_grads, grad_scale, copies);
}

std::vector<torch::Tensor> DataParallelOptimizer::gradients() const {
  std::vector<torch::Tensor> grads;
  grads.reserve(parameters_.size());
  for (const auto& p : parameters_) grads.push_back(p.grad());
  return grads;
}

void DataParallelOptimizer::copy_masters_to_parameters() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (masters_[i].defined()) parameters_[i].detach().copy_(masters_[i]);
  }
}

void DataParallelOptimizer::refresh_masters_from_parameters() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (masters_[i].defined()) masters_[i].copy_(parameters_[i].detach());
  }
}

// As DeepSpeed's optimizers' zero_grad(set_to_none=True): no fill, and the next backward
// hands its gradients over instead of adding them to zeros.
void DataParallelOptimizer::zero_grad() {
  for (auto& p : parameters_) {
    if (p.grad().defined()) p.mutable_grad().reset();
  }
}

MemoryReport DataParallelOptimizer::memory_report() const {
  MemoryReport r;
  for (const auto& p : parameters_) {
    r.parameters += p.numel() * static_cast<int64_t>(p.element_size());
    if (p.grad().defined()) r.gradients += p.grad().numel() * static_cast<int64_t>(p.grad().element_size());
  }
  for (const auto& m : masters_) {
    r.master_weights += m.numel() * static_cast<int64_t>(m.element_size());
    if (m.grad().defined()) r.gradients += m.grad().numel() * static_cast<int64_t>(m.grad().element_size());
  }
  if (optimizer_) r.optimizer_states = optimizer_state_bytes(*optimizer_);
  r.communication_buffers = reducer_->buffer_bytes();
  for (const auto& e : experts_) r.communication_buffers += e.reducer->buffer_bytes();
  r.parameters_peak = r.parameters;
  return r;
}

}  // namespace deepspeed
