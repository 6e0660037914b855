// The training engine (DeepSpeed's DeepSpeedEngine): wraps a model, its optimizer and LR
// schedule, and the process group, and turns the plain loop
//     loss = criterion(engine.forward(x), y); engine.backward(loss); engine.step();
// into data-parallel training configured by ds_config.json.
//
// Promises (spec §2.4, §3): backward() divides the loss by gradient_accumulation_steps and,
// at an accumulation boundary, averages gradients across ranks with bucketed all-reduces that
// start from gradient hooks while backward goes on; step() acts only at boundaries (clip,
// optimizer, LR schedule, zero gradients, counters, progress logs) and must be called after
// every micro batch. All ranks must make the same calls in the same order.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include <deepspeed/checkpoint.h>
#include <deepspeed/comm.h>
#include <deepspeed/config.h>
#include <deepspeed/data_loader.h>
#include <deepspeed/lr_schedules.h>
#include <deepspeed/optimizer.h>

namespace deepspeed {

class GradientReducer;
class Timers;
class ThroughputTimer;

class Engine {
 public:
  Engine(torch::nn::AnyModule model, std::shared_ptr<torch::nn::Module> module,
         DeepSpeedConfig config, std::shared_ptr<comm::ProcessGroup> group,
         std::shared_ptr<Optimizer> optimizer, std::shared_ptr<LRScheduler> lr_scheduler);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Calls the model's forward with these arguments.
  template <typename... Args>
  torch::Tensor forward(Args&&... args) {
    begin_forward();
    auto out = model_.forward(std::forward<Args>(args)...);
    end_forward();
    return out;
  }
  template <typename... Args>
  torch::Tensor operator()(Args&&... args) {
    return forward(std::forward<Args>(args)...);
  }

  // Backpropagates loss / gradient_accumulation_steps (when scale_wrt_gas) and, at a
  // boundary, averages gradients across ranks. Returns the loss it backpropagated.
  torch::Tensor backward(const torch::Tensor& loss, bool retain_graph = false,
                         bool scale_wrt_gas = true);
  // Call after every micro batch; updates the model at accumulation boundaries.
  void step();

  bool is_gradient_accumulation_boundary() const;
  void set_gradient_accumulation_boundary(bool is_boundary) { boundary_override_ = is_boundary; }
  void zero_grad();
  bool was_step_applied() const { return step_applied_; }

  // Batch sizes (methods, as in DeepSpeed).
  int64_t train_batch_size() const { return config_.train_batch_size; }
  int64_t train_micro_batch_size_per_gpu() const { return config_.train_micro_batch_size_per_gpu; }
  int64_t gradient_accumulation_steps() const { return config_.gradient_accumulation_steps; }

  std::vector<double> get_lr() const;
  // Momentum per group: (momentum, 0) for SGD-like optimizers, else betas.
  std::vector<std::array<double, 2>> get_mom() const;
  // Unscaled global L2 norm of the gradients of the last applied step, when one was computed
  // (gradient clipping on); nothing otherwise, as DeepSpeed for fp32 without ZeRO.
  std::optional<double> get_global_grad_norm() const { return global_grad_norm_; }

  int64_t global_steps() const { return global_steps_; }
  int64_t global_samples() const { return global_samples_; }
  int64_t micro_steps() const { return micro_steps_; }
  int64_t skipped_steps() const { return skipped_steps_; }
  int64_t global_rank() const { return group_->rank(); }
  int64_t local_rank() const { return group_->local_rank(); }
  int64_t world_size() const { return group_->size(); }
  int64_t dp_world_size() const { return group_->size(); }
  torch::Device device() const { return device_; }

  void train(bool on = true) { module_->train(on); }
  void eval() { module_->eval(); }
  const std::shared_ptr<torch::nn::Module>& module() const { return module_; }
  template <typename ModuleType>
  std::shared_ptr<ModuleType> module_as() const {
    return std::dynamic_pointer_cast<ModuleType>(module_);
  }
  const std::shared_ptr<Optimizer>& optimizer() const { return optimizer_; }
  const std::shared_ptr<LRScheduler>& lr_scheduler() const { return lr_scheduler_; }
  const std::shared_ptr<DataLoader>& training_dataloader() const { return training_dataloader_; }
  void set_training_dataloader(std::shared_ptr<DataLoader> loader) {
    training_dataloader_ = std::move(loader);
  }
  const DeepSpeedConfig& config() const { return config_; }
  const std::shared_ptr<comm::ProcessGroup>& process_group() const { return group_; }

  // Checkpoints (spec §6, docs/checkpointing.md; implemented in engine_checkpoint.cpp).
  // Every rank must call both. save_checkpoint writes save_dir/<tag>/ (default tag
  // "global_step<N>") atomically and then save_dir/latest; load_checkpoint reads the tag
  // given or the one in load_dir/latest, and returns no path (with DeepSpeed's warning)
  // when there is no `latest`. A checkpoint saved on N ranks loads on any number of ranks.
  // Errors: CheckpointError naming the file that is missing, truncated or corrupt.
  bool save_checkpoint(const std::string& save_dir, std::optional<std::string> tag = std::nullopt,
                       const ClientState& client_state = {}, bool save_latest = true);
  LoadCheckpointResult load_checkpoint(const std::string& load_dir, std::optional<std::string> tag = std::nullopt,
                                       bool load_module_strict = true, bool load_optimizer_states = true,
                                       bool load_lr_scheduler_states = true, bool load_module_only = false);
  // Where checkpoint files go (default: local files, written atomically).
  void set_checkpoint_storage(std::shared_ptr<CheckpointStorage> storage) { checkpoint_storage_ = std::move(storage); }

 private:
  void begin_forward();
  void end_forward();
  void take_model_step();
  void log_progress();
  void log_wall_clock(bool boundary);

  torch::nn::AnyModule model_;
  std::shared_ptr<torch::nn::Module> module_;
  DeepSpeedConfig config_;
  std::shared_ptr<comm::ProcessGroup> group_;
  std::shared_ptr<Optimizer> optimizer_;
  std::shared_ptr<LRScheduler> lr_scheduler_;
  std::shared_ptr<DataLoader> training_dataloader_;
  torch::Device device_;
  std::vector<torch::Tensor> parameters_;  // trainable, in registration order
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<Timers> timers_;
  std::unique_ptr<ThroughputTimer> throughput_;

  int64_t global_steps_ = 0;
  int64_t global_samples_ = 0;
  int64_t micro_steps_ = 0;
  int64_t skipped_steps_ = 0;
  std::optional<bool> boundary_override_;
  bool step_applied_ = false;
  std::optional<double> global_grad_norm_;
  std::shared_ptr<CheckpointStorage> checkpoint_storage_;  // null: CheckpointStorage's defaults
};

}  // namespace deepspeed
