// The engine orchestrates; the work is in GradientReducer (communication), Optimizer and
// LRScheduler (the update), Timers/ThroughputTimer (measurement) and Logger (output).
#include <deepspeed/engine.h>

#include <cmath>

#include <fmt/format.h>
#include <torch/cuda.h>

#include <deepspeed/errors.h>

#include "comm/gradient_reducer.h"
#include "runtime/config_report.h"
#include "runtime/logger.h"
#include "runtime/timers.h"

namespace deepspeed {
namespace {

// DeepSpeed's default gradient bucket for stage 0 is 5e8 elements, i.e. one bucket and no
// overlap; we use PyTorch DDP's 25 MiB so that all-reduce overlaps backward, unless the
// config sets zero_optimization.reduce_bucket_size itself.
constexpr int64_t kDefaultBucketBytes = 25 * 1024 * 1024;

torch::ScalarType communication_dtype(const DeepSpeedConfig& c) {
  const std::string t = c.communication_data_type.value_or(
      c.fp16_enabled() ? "fp16" : c.bf16_enabled() ? "bf16" : "fp32");
  if (t == "fp16") return torch::kFloat16;
  if (t == "bf16") return torch::kBFloat16;
  return torch::kFloat32;
}

std::function<void()> device_synchronizer(torch::Device device) {
  if (!device.is_cuda()) return {};
  return [index = device.index()] { torch::cuda::synchronize(index); };
}

void check_supported(const DeepSpeedConfig& c) {
  if (c.zero_stage() > 0) {
    throw ConfigError("zero_optimization.stage",
                      fmt::format("ZeRO stage {} is not available in this version of deepspeed-cpp "
                                  "yet; use stage 0 (plain data parallelism)",
                                  c.zero_stage()));
  }
  if (c.fp16_enabled() || c.bf16_enabled()) {
    throw ConfigError(c.fp16_enabled() ? "fp16.enabled" : "bf16.enabled",
                      "mixed precision is not available in this version of deepspeed-cpp yet; "
                      "train in fp32 (set enabled to false)");
  }
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
  check_supported(config_);
  Logger logger(group_->rank(), config_.log_level ? parse_log_level(*config_.log_level) : LogLevel::Info);
  for (const auto& w : config_.warnings) logger.warning(w);

  module_->to(device_);
  for (auto& p : module_->parameters()) {
    if (p.requires_grad()) parameters_.push_back(p);
  }
  // Every rank starts from rank 0's weights, whatever its own initialisation drew.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : module_->parameters()) group_->broadcast(p, 0);
    for (auto& b : module_->buffers()) group_->broadcast(b, 0);
  }

  GradientReducer::Options ro;
  ro.comm_dtype = communication_dtype(config_);
  const int64_t element_bytes = static_cast<int64_t>(c10::elementSize(ro.comm_dtype));
  ro.bucket_elements = kDefaultBucketBytes / element_bytes;
  if (config_.raw.contains("zero_optimization") && config_.raw["zero_optimization"].is_object() &&
      config_.raw["zero_optimization"].contains("reduce_bucket_size")) {
    ro.bucket_elements = config_.zero_optimization.reduce_bucket_size;
  }
  ro.average = config_.gradient_allreduce_op == "mean";
  ro.prescale = config_.prescale_gradients;
  ro.predivide_factor = config_.gradient_predivide_factor;
  reducer_ = std::make_unique<GradientReducer>(parameters_, group_, ro);

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
    for (const auto& line : config_report_lines(config_)) logger.info(line);
    if (optimizer_) log_progress();
  }
}

Engine::~Engine() = default;

void Engine::begin_forward() {
  if (config_.throughput_timer.enabled) throughput_->start();
  if (config_.wall_clock_breakdown) timers_->start("fwd_microstep"), timers_->start("fwd");
}

void Engine::end_forward() {
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
  auto scaled = scale_wrt_gas && config_.gradient_accumulation_steps > 1
                    ? loss / static_cast<double>(config_.gradient_accumulation_steps)
                    : loss;
  const bool boundary = is_gradient_accumulation_boundary();
  reducer_->prepare(boundary);
  if (wall) timers_->start("bwd_inner_microstep"), timers_->start("bwd_inner");
  scaled.backward({}, retain_graph);
  if (wall) timers_->stop("bwd_inner_microstep"), timers_->stop("bwd_inner");
  if (wall) timers_->start("bwd_allreduce_microstep"), timers_->start("bwd_allreduce");
  reducer_->finalize();
  if (wall) timers_->stop("bwd_allreduce_microstep"), timers_->stop("bwd_allreduce");
  if (wall) timers_->stop("bwd_microstep"), timers_->stop("bwd");
  return scaled.detach();
}

void Engine::zero_grad() {
  for (auto& p : parameters_) {
    if (p.grad().defined()) {
      p.mutable_grad().detach_();
      p.mutable_grad().zero_();
    }
  }
}

void Engine::take_model_step() {
  torch::NoGradGuard no_grad;
  global_grad_norm_.reset();
  if (config_.gradient_clipping > 0.0) {
    // Gradients are already averaged, hence equal on every rank: the local norm is global.
    auto total = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
    for (auto& p : parameters_) {
      if (p.grad().defined()) total += p.grad().to(torch::kFloat64).pow(2).sum();
    }
    const double norm = std::sqrt(total.item<double>());
    global_grad_norm_ = norm;
    const double coef = config_.gradient_clipping / (norm + 1e-6);
    if (coef < 1.0) {
      for (auto& p : parameters_) {
        if (p.grad().defined()) p.mutable_grad().mul_(coef);
      }
    }
  }
  optimizer_->step();
  step_applied_ = true;
  zero_grad();
  if (lr_scheduler_) lr_scheduler_->step();
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
