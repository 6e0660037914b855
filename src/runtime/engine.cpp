// The engine orchestrates; the work is in the optimizer wrapper (reduction, precision and
// ZeRO partitioning: DataParallelOptimizer, ZeroOptimizer), Optimizer and LRScheduler (the
// update), Timers/ThroughputTimer/WallClockBreakdown (measurement), Logger (output), the
// monitors, the flops profiler and the process group's comms logger (reports).
#include <deepspeed/engine.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <torch/cuda.h>
#if DS_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <deepspeed/comms_logger.h>
#include <deepspeed/errors.h>
#include <deepspeed/flops_profiler.h>
#include <deepspeed/moe.h>

#include "runtime/data_parallel_optimizer.h"
#include "runtime/host_malloc_settings.h"
#include "runtime/step/precision.h"
#include "runtime/zero/moe_zero_optimizer.h"
#include "runtime/zero/zero_optimizer.h"
#include "runtime/autocast_guard.h"
#include "runtime/config_report.h"
#include "runtime/logger.h"
#include "runtime/timers.h"
#include "runtime/wall_clock_breakdown.h"

namespace deepspeed {
namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// The experts of the module's MoE layers, one group per expert-parallel size. Makes their
// groups (DeepSpeed's engine calls set_deepspeed_parallelism on every MoE layer): collective.
ExpertParameters find_experts(torch::nn::Module& module, Groups& groups) {
  std::map<int64_t, ExpertParameterGroup> by_size;
  for (const auto& m : module.modules()) {
    auto* layer = m->as<moe::MoEImpl>();
    if (!layer) continue;
    layer->set_deepspeed_parallelism(groups);
    const int64_t ep = layer->options().ep_size;
    auto& g = by_size[ep];
    g.expert_parallel = groups.expert_parallel(ep);
    g.expert_data_parallel = groups.expert_data_parallel(ep);
    for (const auto& p : layer->expert_parameters()) {
      if (p.requires_grad()) g.parameters.push_back(p);
    }
  }
  ExpertParameters out;
  for (auto& [ep, g] : by_size) out.push_back(std::move(g));
  return out;
}

std::function<void()> device_synchronizer(torch::Device device) {
  if (!device.is_cuda()) return {};
  return [index = device.index()] { torch::cuda::synchronize(index); };
}

}  // namespace

Engine::Engine(torch::nn::AnyModule model, std::shared_ptr<torch::nn::Module> module,
               DeepSpeedConfig config, std::shared_ptr<Groups> groups,
               std::shared_ptr<Optimizer> optimizer, std::shared_ptr<LRScheduler> lr_scheduler,
               const std::vector<torch::Tensor>& tensor_parallel_parameters,
               const std::vector<torch::Tensor>& counted_elsewhere)
    : model_(std::move(model)),
      module_(std::move(module)),
      config_(std::move(config)),
      group_(groups->world()),
      groups_(std::move(groups)),
      dp_group_(groups_->sequence_data_parallel()),
      optimizer_(std::move(optimizer)),
      lr_scheduler_(std::move(lr_scheduler)),
      device_(group_->device()) {
  check_precision_and_zero(config_, optimizer_ ? optimizer_->name() : std::string(), !config_.optimizer.has_value());
  check_fp16_on_device(config_, device_);
  // Before any collective: refuses the online monitors on every rank alike.
  monitor_ = std::make_unique<MonitorMaster>(config_, group_->rank());
  model_dtype_ = deepspeed::model_dtype(config_);
  const LogLevel log_level = config_.log_level ? parse_log_level(*config_.log_level) : LogLevel::Info;
  Logger logger(group_->rank(), log_level);
  if (config_.comms_logger.enabled) {
    // Set before the initial broadcasts, so that they are logged too (as in DeepSpeed).
    auto comms = std::make_shared<comm::CommsLogger>(
        config_.comms_logger, group_->size(), group_->rank(),
        [log_level](const std::string& line) { Logger(0, log_level).info(line); });
    for (const auto& g : groups_->all()) g->set_comms_logger(comms);
  }
  if (group_->size() > 1 && logger.enabled(LogLevel::Info)) logger.info(groups_->summary());
  for (const auto& w : config_.warnings) logger.warning(w);
  if (device_.is_cpu()) logger.info("host memory: " + keep_freed_host_memory_for_reuse().detail);
  if (config_.torch_autocast.enabled && !config_.torch_autocast.lower_precision_safe_modules.empty()) {
    logger.warning("torch_autocast.lower_precision_safe_modules names Python module classes; deepspeed-cpp ignores "
                   "it: LibTorch's autocast decides per operation which ones run in lower precision");
  }

  // Mixture of Experts: each layer's expert groups (collective, in module order on every rank)
  // and the parameters that belong to them.
  const auto experts = find_experts(*module_, *groups_);
  if (!experts.empty() && optimizer_ && config_.zero_stage() == 3) {
    throw EngineError("MoE layers are not supported with ZeRO stage 3 (nor in DeepSpeed); choose ZeRO stage 1 or 2 "
                      "(docs/moe.md)");
  }
  std::unordered_map<const void*, comm::ProcessGroup*> broadcast_group;
  for (const auto& e : experts) {
    for (const auto& p : e.parameters) broadcast_group[p.unsafeGetTensorImpl()] = e.expert_data_parallel.get();
  }
  {
    torch::NoGradGuard no_grad;
    // ZeRO-3 takes the optimizer's parameters to the device one at a time as it partitions
    // them (partition_whole_parameters), so a model built on the CPU never has to fit on the
    // device whole. Everything else moves now.
    std::unordered_set<const void*> zero3_moves;
    if (optimizer_ && config_.zero_stage() == 3) {
      for (const auto& g : optimizer_->param_groups()) {
        for (const auto& t : g.params) zero3_moves.insert(t.unsafeGetTensorImpl());
      }
    }
    for (auto& p : module_->parameters()) {
      if (p.requires_grad() && zero3_moves.count(p.unsafeGetTensorImpl())) continue;
      // fp16/bf16: the parameters (not the buffers, as DeepSpeed) take the model's dtype; the
      // tensors stay the same objects, so the optimizer's groups still refer to them.
      const auto dtype = p.is_floating_point() ? model_dtype_ : p.scalar_type();
      if (p.device() != device_ || p.scalar_type() != dtype) p.set_data(p.detach().to(device_, dtype));
      // Every replica starts from the first replica's weights, whatever its own initialisation
      // drew; model-parallel ranks hold different parts and keep them, and an expert comes
      // from the first rank that holds the same experts.
      const auto expert = broadcast_group.find(p.unsafeGetTensorImpl());
      (expert == broadcast_group.end() ? *dp_group_ : *expert->second).broadcast(p, 0);
    }
    for (auto& b : module_->buffers()) {
      if (b.device() != device_) b.set_data(b.detach().to(device_));
      dp_group_->broadcast(b, 0);
    }
  }
  for (auto& p : module_->parameters()) {
    if (p.requires_grad()) parameters_.push_back(p);
  }
  ModelParallelGradients model_parallel(groups_->model_parallel(), groups_->tensor_parallel()->rank(),
                                        tensor_parallel_parameters, counted_elsewhere);
  if (optimizer_ && config_.zero_stage() > 0 && !experts.empty()) {
    wrapper_ = std::make_unique<MoeZeroOptimizer>(parameters_, dp_group_, config_, optimizer_, std::move(model_parallel),
                                                  experts);
  } else if (optimizer_ && config_.zero_stage() > 0) {
    wrapper_ = std::make_unique<ZeroOptimizer>(parameters_, dp_group_, config_, optimizer_, std::move(model_parallel));
  } else {
    wrapper_ = std::make_unique<DataParallelOptimizer>(parameters_, dp_group_, config_, optimizer_,
                                                       std::move(model_parallel), experts);
  }

  if (optimizer_ && !config_.fp16_enabled()) {  // DeepSpeed's warning for its 1-bit optimizers
    const std::string n = optimizer_->name();
    const char* what = n == "OneBitAdam" ? "1-bit Adam" : n == "ZeroOneAdam" ? "0/1 Adam" : n == "OneBitLamb" ? "1-bit Lamb" : nullptr;
    if (what) logger.warning(fmt::format("Currently the convergence of {} is only verified under FP16", what));
  }

  timers_ = std::make_unique<Timers>(device_synchronizer(device_));
  if (config_.wall_clock_breakdown) {
    wall_clock_ = std::make_unique<WallClockBreakdown>(*timers_, config_.steps_per_print);
  }
  if (config_.flops_profiler.enabled && group_->rank() == 0) {
    flops_profiler_ = std::make_unique<FlopsProfiler>(module_, config_.flops_profiler.recompute_fwd_factor,
                                                      device_synchronizer(device_));
  }
  auto sync = config_.throughput_timer.synchronized ? device_synchronizer(device_) : std::function<void()>{};
  // MemAllocated / MaxMemAllocated of the SamplesPerSec line: torch.cuda.memory_allocated()
  // and max_memory_allocated() in GiB (the caching allocator's aggregate); 0 on the CPU.
  auto memory = [dev = device_]() -> std::pair<double, double> {
#if DS_HAVE_CUDA
    if (dev.is_cuda()) {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index());
      constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
      return {static_cast<double>(stats.allocated_bytes[0].current) / kGiB,
              static_cast<double>(stats.allocated_bytes[0].peak) / kGiB};
    }
#endif
    (void)dev;
    return {0.0, 0.0};
  };
  throughput_ = std::make_unique<ThroughputTimer>(config_.train_batch_size, config_.steps_per_print,
                                                  sync, memory);

  if (logger.enabled(LogLevel::Info)) {
    logger.info(fmt::format("DeepSpeed info: version={}, git-hash={}, git-branch={}", deepspeed_version(),
                            deepspeed_git_hash(), deepspeed_git_branch()));
    if (optimizer_) logger.info("DeepSpeed Final Optimizer = " + wrapper_->name());
    logger.info(fmt::format("DeepSpeed Flops Profiler Enabled: {}", config_.flops_profiler.enabled ? "True" : "False"));
    for (const auto& line : config_report_lines(config_)) logger.info(line);
    if (optimizer_) log_progress();
  }
}

Engine::~Engine() {
  auto* comms = group_->comms_logger();
  if (!config_.comms_logger.enabled || !comms || !comms->has_unreported()) return;
  try {
    if (group_->rank() == 0) {
      std::fputs(comms->summary().c_str(), stdout);
      std::fflush(stdout);
    }
    comms->mark_reported();
  } catch (...) {  // a report must not turn a destructor into std::terminate
  }
}

void Engine::begin_forward() {
  if (config_.torch_autocast.enabled) {
    autocast_ = std::make_unique<AutocastGuard>(
        device_, config_.torch_autocast.dtype == "fp16" ? torch::kFloat16 : torch::kBFloat16);
  }
  if (config_.throughput_timer.enabled) throughput_->start();
  if (wall_clock_) timers_->start(WallClockBreakdown::kForwardMicro), timers_->start(WallClockBreakdown::kForward);
  // DeepSpeed profiles the forward passes of the step numbered profile_step (the last micro
  // batch's, with gradient accumulation: each start forgets the previous one).
  if (flops_profiler_ && global_steps_ == config_.flops_profiler.profile_step) {
    flops_profiler_->start_profile();
    profile_pending_ = true;
  }
  wrapper_->before_forward();
}

void Engine::end_forward(bool completed) {
  if (completed) wrapper_->after_forward(torch::GradMode::is_enabled());
  if (flops_profiler_) flops_profiler_->stop_profile();
  autocast_.reset();
  if (wall_clock_) timers_->stop(WallClockBreakdown::kForwardMicro), timers_->stop(WallClockBreakdown::kForward);
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
  auto averaged = scale_wrt_gas && config_.gradient_accumulation_steps > 1
                      ? loss / static_cast<double>(config_.gradient_accumulation_steps)
                      : loss;
  const bool boundary = is_gradient_accumulation_boundary();
  // Inside no_sync the wrapper is told "not a boundary": gradients stay in this rank's .grad
  // and are reduced, added up, by the first backward at a boundary outside it.
  const bool reduce = boundary && !no_sync_;
  if (monitor_->enabled() && group_->rank() == 0) {
    // DeepSpeed's Train/Samples/train_loss: this rank's loss summed over the accumulation
    // window (the mean over its micro batches), at the samples seen before this step.
    auto l = averaged.detach().to(torch::kFloat32);
    window_loss_ = window_loss_.defined() ? window_loss_ + l : l;
    if (boundary) {
      monitor_->write_events({{"Train/Samples/train_loss", window_loss_.item<double>(), global_samples_}});
      window_loss_ = torch::Tensor();
    }
  }
  const double scale = wrapper_->loss_scale();
  auto scaled = scale != 1.0 ? averaged.to(torch::kFloat32) * scale : averaged;
  window_losses_.push_back(loss.detach());
  run_backward_pass([&] { scaled.backward({}, retain_graph); }, reduce);
  return averaged.detach();
}

void Engine::run_backward_pass(const std::function<void()>& autograd, bool reduce) {
  if (!optimizer_) throw EngineError("must provide optimizer during init in order to use backward");
  using W = WallClockBreakdown;
  const bool wall = wall_clock_ != nullptr;
  if (wall) timers_->start(W::kBackwardMicro), timers_->start(W::kBackward);
  wrapper_->before_backward(reduce);
  if (autograd) {
    if (wall) timers_->start(W::kBackwardInnerMicro), timers_->start(W::kBackwardInner);
    autograd();
    if (wall) timers_->stop(W::kBackwardInnerMicro), timers_->stop(W::kBackwardInner);
  }
  if (wall) timers_->start(W::kBackwardReduceMicro), timers_->start(W::kBackwardReduce);
  wrapper_->after_backward(reduce);
  if (wall) timers_->stop(W::kBackwardReduceMicro), timers_->stop(W::kBackwardReduce);
  if (wall) timers_->stop(W::kBackwardMicro), timers_->stop(W::kBackward);
  backward_since_step_ = true;
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

std::optional<double> Engine::get_global_grad_norm() const {
  if (!global_grad_norm_.defined()) return std::nullopt;
  return global_grad_norm_.item<double>();
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

GatheredParameters Engine::gathered_parameters() {
  if (!wrapper_->partitions_parameters()) return GatheredParameters();
  wrapper_->gather_all_parameters();
  return GatheredParameters([wrapper = wrapper_.get()] { wrapper->release_all_parameters(); });
}

MemoryReport Engine::memory_report() const {
  auto r = wrapper_->memory_report();
  for (const auto& b : module_->buffers()) r.buffers += b.numel() * static_cast<int64_t>(b.element_size());
  return r;
}

void Engine::throw_no_type_erased_forward() const {
  throw EngineError("Engine::forward: this engine was built for a model whose forward cannot be called through "
                    "torch::nn::AnyModule (an overloaded or template forward); call forward on the ModelEngine that "
                    "deepspeed::initialize returned for it");
}

void Engine::throw_forward_result_type(const std::type_info& returned, const std::type_info& asked) const {
  const std::string type = c10::demangle(returned.name());
  throw EngineError(fmt::format("Engine::forward: the model's forward returns {}, not {}; call "
                                "engine->forward<{}>(...), or use the ModelEngine that deepspeed::initialize returns "
                                "for the model, whose forward returns the model's type",
                                type, c10::demangle(asked.name()), type));
}

void Engine::explain_forward_error(const c10::Error& error, const std::vector<torch::ScalarType>& input_dtypes) const {
  if (model_dtype_ == torch::kFloat32 || config_.fp16.auto_cast) return;  // auto_cast: the inputs were cast
  for (size_t i = 0; i < input_dtypes.size(); ++i) {
    const auto dtype = input_dtypes[i];
    if (!c10::isFloatingType(dtype) || dtype == model_dtype_) continue;
    const std::string model = model_dtype_ == torch::kBFloat16 ? "bf16" : "fp16";
    throw EngineError(fmt::format(
        "forward: the model's parameters are {} ({}.enabled) but tensor argument {} is {}, and LibTorch refused the "
        "mix ({}). Cast floating-point inputs to the model's dtype, x.to(engine->device(), engine->model_dtype()), or "
        "set \"fp16\": {{\"auto_cast\": true}} to have the engine cast them (to the model's dtype, bf16 included)",
        c10::toString(model_dtype_), model, i, c10::toString(dtype), first_line(error.what_without_backtrace())));
  }
}

torch::Tensor Engine::cast_input(const torch::Tensor& t) const {
  if (!config_.fp16.auto_cast || model_dtype_ == torch::kFloat32 || !t.defined() || !t.is_floating_point()) return t;
  return t.to(model_dtype_);
}

NoSync Engine::no_sync() {
  if (config_.zero_stage() >= 2) {
    throw EngineError(fmt::format("no_sync context manager is incompatible with gradient partitioning logic of "
                                  "ZeRO stage {}",
                                  config_.zero_stage()));
  }
  if (no_sync_) throw EngineError("no_sync context manager reentry is unsupported");
  no_sync_ = true;
  return NoSync(*this);
}

void Engine::step() {
  if (no_sync_) throw EngineError("It is illegal to call Engine.step() inside no_sync context manager");
  if (optimizer_ && !backward_since_step_) {
    throw EngineError(fmt::format("step() at micro step {} without a backward() since the last step(): call "
                                  "engine->backward(loss) for every micro batch, then engine->step()",
                                  micro_steps_));
  }
  backward_since_step_ = false;
  const bool wall = wall_clock_ != nullptr;
  if (wall) timers_->start(WallClockBreakdown::kStepMicro), timers_->start(WallClockBreakdown::kStep);
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
  if (wall) timers_->stop(WallClockBreakdown::kStepMicro), timers_->stop(WallClockBreakdown::kStep);
  if (config_.throughput_timer.enabled) {
    const int64_t epoch = training_dataloader_ ? std::max<int64_t>(training_dataloader_->epoch(), 0) : 0;
    auto line = throughput_->stop(boundary, epoch);
    if (!line.empty() && group_->rank() == 0) {
      Logger(group_->rank(), LogLevel::Info).info(line);
    }
  }
  report_step(boundary);
  ++micro_steps_;
}

// After a step(), in DeepSpeed's order: the monitors' lr and loss scale, the flops profile,
// the wall-clock lines and the monitors' phase timings.
void Engine::report_step(bool boundary) {
  const bool rank0 = group_->rank() == 0;
  if (boundary && rank0 && monitor_->enabled() && optimizer_) {
    std::vector<MonitorEvent> events{{"Train/Samples/lr", get_lr().at(0), global_samples_}};
    if (config_.fp16.enabled) events.push_back({"Train/Samples/loss_scale", wrapper_->loss_scale(), global_samples_});
    monitor_->write_events(events);
  }
  std::optional<WallClockBreakdown::StepTimes> times;
  std::vector<std::string> lines;
  if (wall_clock_) times = wall_clock_->end_of_step(boundary, global_steps_, lines);
  if (boundary && profile_pending_) {
    profile_pending_ = false;
    print_flops_profile(times ? std::optional<std::array<double, 3>>({times->forward, times->backward, times->step})
                              : std::nullopt);
  }
  if (!rank0) return;
  for (const auto& line : lines) std::printf("[Rank 0] %s\n", line.c_str());
  if (!lines.empty()) std::fflush(stdout);
  if (times && monitor_->enabled()) {
    monitor_->write_events({{"Train/Samples/elapsed_time_ms_forward", times->forward, global_samples_},
                            {"Train/Samples/elapsed_time_ms_backward", times->backward, global_samples_},
                            {"Train/Samples/elapsed_time_ms_backward_inner", times->backward_inner, global_samples_},
                            {"Train/Samples/elapsed_time_ms_backward_allreduce", times->backward_allreduce,
                             global_samples_},
                            {"Train/Samples/elapsed_time_ms_step", times->step, global_samples_}});
  }
}

void Engine::print_flops_profile(const std::optional<std::array<double, 3>>& fwd_bwd_step_ms) {
  if (!flops_profiler_) return;
  ProfileContext context;
  context.world_size = world_size();
  context.dp_world_size = dp_world_size();
  context.micro_batch_size = train_micro_batch_size_per_gpu();
  if (fwd_bwd_step_ms) {
    context.forward_ms = (*fwd_bwd_step_ms)[0];
    context.backward_ms = (*fwd_bwd_step_ms)[1];
    context.step_ms = (*fwd_bwd_step_ms)[2];
  }
  ProfilePrintOptions options;
  options.profile_step = config_.flops_profiler.profile_step;
  options.module_depth = config_.flops_profiler.module_depth;
  options.top_modules = config_.flops_profiler.top_modules;
  options.detailed = config_.flops_profiler.detailed;
  const auto& file = config_.flops_profiler.output_file;
  if (file && !file->empty()) {
    const auto parent = std::filesystem::absolute(*file).parent_path();
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    std::ofstream out(*file, std::ios::trunc);
    if (!out) throw ConfigError("flops_profiler.output_file", "cannot write the profile to " + *file);
    flops_profiler_->print_model_profile(out, options, context);
  } else {
    std::fflush(stdout);
    flops_profiler_->print_model_profile(std::cout, options, context);
  }
  flops_profiler_->end_profile();
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

}  // namespace deepspeed
