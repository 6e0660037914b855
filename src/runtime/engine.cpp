// The engine orchestrates; the work is in the optimizer wrapper (reduction, precision and
// ZeRO partitioning: DataParallelOptimizer, ZeroOptimizer), Optimizer and LRScheduler (the
// update), Timers/ThroughputTimer (measurement) and Logger (output).
#include <deepspeed/engine.h>

#include <cmath>

#include <fmt/format.h>
#include <torch/cuda.h>

#include <deepspeed/errors.h>

#include "runtime/data_parallel_optimizer.h"
#include "runtime/precision.h"
#include "runtime/zero/zero_optimizer.h"
#include "runtime/autocast_guard.h"
#include "runtime/config_report.h"
#include "runtime/logger.h"
#include "runtime/timers.h"

namespace deepspeed {
namespace {

std::function<void()> device_synchronizer(torch::Device device) {
  if (!device.is_cuda()) return {};
  return [index = device.index()] { torch::cuda::synchronize(index); };
}

}  // namespace

Engine::Engine(torch::nn::AnyModule model, std::shared_ptr<torch::nn::Module> module,
               DeepSpeedConfig config, std::shared_ptr<comm::ProcessGroup> group,
               std::shared_ptr<Optimizer> optimizer, std::shared_ptr<LRScheduler> lr_scheduler)
    : model_(std::move(model)),
      module_(std::move(module)),
      config_(std::move(config)),
      group_(std::move(group)),
      optimizer_(std::move(optimizer)),
      lr_scheduler_(std::move(lr_scheduler)),
      device_(group_->device()) {
  check_precision_and_zero(config_, optimizer_ ? optimizer_->name() : std::string(), !config_.optimizer.has_value());
  model_dtype_ = deepspeed::model_dtype(config_);
  Logger logger(group_->rank(), config_.log_level ? parse_log_level(*config_.log_level) : LogLevel::Info);
  for (const auto& w : config_.warnings) logger.warning(w);
  if (config_.torch_autocast.enabled && !config_.torch_autocast.lower_precision_safe_modules.empty()) {
    logger.warning("torch_autocast.lower_precision_safe_modules names Python module classes; deepspeed-cpp ignores "
                   "it: LibTorch's autocast decides per operation which ones run in lower precision");
  }

  module_->to(device_);
  {
    torch::NoGradGuard no_grad;
    // fp16/bf16: the parameters (not the buffers, as DeepSpeed) take the model's dtype; the
    // tensors stay the same objects, so the optimizer's groups still refer to them.
    if (model_dtype_ != torch::kFloat32) {
      for (auto& p : module_->parameters()) {
        if (p.is_floating_point()) p.set_data(p.detach().to(model_dtype_));
      }
    }
    // Every rank starts from rank 0's weights, whatever its own initialisation drew.
    for (auto& p : module_->parameters()) group_->broadcast(p, 0);
    for (auto& b : module_->buffers()) group_->broadcast(b, 0);
  }
  for (auto& p : module_->parameters()) {
    if (p.requires_grad()) parameters_.push_back(p);
  }
  if (optimizer_ && config_.zero_stage() > 0) {
    wrapper_ = std::make_unique<ZeroOptimizer>(parameters_, group_, config_, optimizer_);
  } else {
    wrapper_ = std::make_unique<DataParallelOptimizer>(parameters_, group_, config_, optimizer_);
  }

  timers_ = std::make_unique<Timers>(device_synchronizer(device_));
  auto sync = config_.throughput_timer.synchronized ? device_synchronizer(device_) : std::function<void()>{};
  auto memory = [dev = device_]() -> std::pair<double, double> {
    (void)dev;
    return {0.0, 0.0};
  };
  throughput_ = std::make_unique<ThroughputTimer>(config_.train_batch_size, config_.steps_per_print,
                                                  sync, memory);

  if (logger.enabled(LogLevel::Info)) {
    logger.info(fmt::format("DeepSpeed info: version={}, git-hash={}, git-branch={}", deepspeed_version(),
                            deepspeed_git_hash(), deepspeed_git_branch()));
    if (optimizer_) logger.info("DeepSpeed Final Optimizer = " + wrapper_->name());
    for (const auto& line : config_report_lines(config_)) logger.info(line);
    if (optimizer_) log_progress();
  }
}

Engine::~Engine() = default;

void Engine::begin_forward() {
  if (config_.torch_autocast.enabled) {
    autocast_ = std::make_unique<AutocastGuard>(
        device_, config_.torch_autocast.dtype == "fp16" ? torch::kFloat16 : torch::kBFloat16);
  }
  if (config_.throughput_timer.enabled) throughput_->start();
  if (config_.wall_clock_breakdown) timers_->start("fwd_microstep"), timers_->start("fwd");
}

void Engine::end_forward() {
  autocast_.reset();
  if (config_.wall_clock_breakdown) timers_->stop("fwd_microstep"), timers_->stop("fwd");
}

bool Engine::is_gradient_accumulation_boundary() const {
  if (boundary_override_) return *boundary_override_;
  return (micro_steps_ + 1) % config_.gradient_accumulation_steps == 0;
}

torch::Tensor Engine::backward(const torch::Tensor& loss, bool retain_graph, bool scale_wrt_gas) {
  if (!optimizer_) {
    throw EngineError("must provide optimizer during init in order to use backward");
  }
  if (!loss.defined() || loss.numel() != 1) {
    throw EngineError("backward: the loss must be a scalar tensor, got shape " +
                      (loss.defined() ? c10::str(loss.sizes()) : std::string("undefined")));
  }
  if (!loss.requires_grad()) {
    throw EngineError("backward: the loss does not require grad (was it computed under "
                      "torch::NoGradGuard, or from detached tensors?)");
  }
  const bool wall = config_.wall_clock_breakdown;
  if (wall) timers_->start("bwd_microstep"), timers_->start("bwd");
  auto averaged = scale_wrt_gas && config_.gradient_accumulation_steps > 1
                      ? loss / static_cast<double>(config_.gradient_accumulation_steps)
                      : loss;
  const double scale = wrapper_->loss_scale();
  auto scaled = scale != 1.0 ? averaged.to(torch::kFloat32) * scale : averaged;
  const bool boundary = is_gradient_accumulation_boundary();
  window_losses_.push_back(loss.detach());
  wrapper_->before_backward(boundary);
  if (wall) timers_->start("bwd_inner_microstep"), timers_->start("bwd_inner");
  scaled.backward({}, retain_graph);
  if (wall) timers_->stop("bwd_inner_microstep"), timers_->stop("bwd_inner");
  if (wall) timers_->start("bwd_allreduce_microstep"), timers_->start("bwd_allreduce");
  wrapper_->after_backward(boundary);
  if (wall) timers_->stop("bwd_allreduce_microstep"), timers_->stop("bwd_allreduce");
  if (wall) timers_->stop("bwd_microstep"), timers_->stop("bwd");
  return averaged.detach();
}

void Engine::zero_grad() { wrapper_->zero_grad(); }

void Engine::take_model_step() {
  auto outcome = wrapper_->step(config_.gradient_clipping);
  if (group_->rank() == 0) {
    const LogLevel level = config_.log_level ? parse_log_level(*config_.log_level) : LogLevel::Info;
    Logger logger(0, level);
    for (const auto& line : outcome.messages.skip) logger.info(line);
    for (const auto& line : outcome.messages.info) logger.log(LogLevel::Debug, line);
  }
  if (outcome.nonfinite) on_nonfinite_gradients();
  window_losses_.clear();
  step_applied_ = outcome.applied;
  if (outcome.applied) {
    global_grad_norm_ = outcome.grad_norm;
    if (lr_scheduler_) lr_scheduler_->step();
  } else {
    ++skipped_steps_;
  }
}

// Every rank gets here together (the gradients were averaged, or the overflow flag
// all-reduced), so "error" stops every rank with the same step number and none is left
// waiting in a collective.
void Engine::on_nonfinite_gradients() {
  std::string losses;
  for (size_t i = 0; i < window_losses_.size(); ++i) {
    const double value = window_losses_[i].item<double>();
    if (std::isfinite(value)) continue;
    const int64_t micro = micro_steps_ - static_cast<int64_t>(window_losses_.size()) + 1 + static_cast<int64_t>(i);
    losses += fmt::format("{}{} at micro step {}", losses.empty() ? "" : ", ", python_repr(value), micro);
  }
  const std::string cause =
      losses.empty() ? fmt::format("rank {}'s losses in this step were finite, so the NaN/inf came from another "
                                   "rank's batch or from the backward pass",
                                   group_->rank())
                     : fmt::format("rank {}'s loss was {}", group_->rank(), losses);
  const std::string what = fmt::format("global step {}: the gradients hold NaN or inf ({})", global_steps_ + 1, cause);
  if (config_.nonfinite_gradients == "error") {
    throw EngineError(what + "; no update was applied. Training stops here (\"nonfinite_gradients\": \"error\"); "
                             "\"skip\" skips such steps instead, as fp16 training does");
  }
  // "skip": rank 0 reports every skipped step; a rank whose own loss was the culprit says so.
  if (group_->rank() == 0 || !losses.empty()) {
    const LogLevel level = config_.log_level ? parse_log_level(*config_.log_level) : LogLevel::Info;
    Logger(group_->rank(), level).log(LogLevel::Warning, what + "; skipping this step", /*all_ranks=*/true);
  }
}

double Engine::cur_scale() const { return wrapper_->loss_scale(); }

std::string Engine::optimizer_wrapper_name() const { return wrapper_->name(); }

MemoryReport Engine::memory_report() const {
  auto r = wrapper_->memory_report();
  for (const auto& b : module_->buffers()) r.buffers += b.numel() * static_cast<int64_t>(b.element_size());
  return r;
}

torch::Tensor Engine::cast_input(const torch::Tensor& t) const {
  if (!config_.fp16.auto_cast || model_dtype_ == torch::kFloat32 || !t.defined() || !t.is_floating_point()) return t;
  return t.to(model_dtype_);
}

void Engine::step() {
  const bool wall = config_.wall_clock_breakdown;
  if (wall) timers_->start("step_microstep"), timers_->start("step");
  const bool boundary = is_gradient_accumulation_boundary();
  step_applied_ = false;
  if (boundary) {
    if (optimizer_) take_model_step();
    if (config_.steps_per_print > 0 && (global_steps_ + 1) % config_.steps_per_print == 0) {
      ++global_steps_;
      log_progress();
      --global_steps_;
    }
    ++global_steps_;
    global_samples_ += config_.train_batch_size;
  }
  if (wall) timers_->stop("step_microstep"), timers_->stop("step");
  if (config_.throughput_timer.enabled) {
    const int64_t epoch = training_dataloader_ ? std::max<int64_t>(training_dataloader_->epoch(), 0) : 0;
    auto line = throughput_->stop(boundary, epoch);
    if (!line.empty() && group_->rank() == 0) {
      Logger(group_->rank(), LogLevel::Info).info(line);
    }
  }
  if (wall) log_wall_clock(boundary);
  ++micro_steps_;
}

std::vector<double> Engine::get_lr() const {
  return optimizer_ ? deepspeed::get_lr(*optimizer_) : std::vector<double>{};
}

std::vector<std::array<double, 2>> Engine::get_mom() const {
  std::vector<std::array<double, 2>> out;
  if (!optimizer_) return out;
  for (const auto& m : deepspeed::get_mom(*optimizer_)) out.push_back(m.values);
  return out;
}

void Engine::log_progress() {
  if (group_->rank() != 0 || !optimizer_) return;
  Logger(0, config_.log_level ? parse_log_level(*config_.log_level) : LogLevel::Info)
      .info(fmt::format("[Rank 0] step={}, skipped={}, lr={}, mom={}", global_steps_, skipped_steps_,
                        python_repr(deepspeed::get_lr(*optimizer_)), python_repr(deepspeed::get_mom(*optimizer_))));
}

void Engine::log_wall_clock(bool boundary) {
  if (group_->rank() != 0) {
    // Keep the counters in step on every rank so that they do not accumulate forever.
    timers_->report({"fwd_microstep", "bwd_microstep", "bwd_inner_microstep", "bwd_allreduce_microstep",
                     "step_microstep"});
    if (boundary) timers_->report({"fwd", "bwd", "bwd_inner", "bwd_allreduce", "step"});
    return;
  }
  std::printf("[Rank 0] time (ms) | %s\n",
              timers_->report({"fwd_microstep", "bwd_microstep", "bwd_inner_microstep",
                               "bwd_allreduce_microstep", "step_microstep"})
                  .c_str());
  if (boundary) {
    std::printf("[Rank 0] time (ms) | %s\n",
                timers_->report({"fwd", "bwd", "bwd_inner", "bwd_allreduce", "step"}).c_str());
  }
  std::fflush(stdout);
}

}  // namespace deepspeed
