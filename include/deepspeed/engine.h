// The training engine (DeepSpeed's DeepSpeedEngine): wraps a model, its optimizer and LR
// schedule, and the process group, and turns the plain loop
//     loss = criterion(engine.forward(x), y); engine.backward(loss); engine.step();
// into data-parallel training configured by ds_config.json.
//
// Promises (docs/getting_started.md, "The loop"): backward() divides the loss by
// gradient_accumulation_steps and,
// at an accumulation boundary, averages gradients across ranks with bucketed all-reduces that
// start from gradient hooks while backward goes on; step() acts only at boundaries (clip,
// optimizer, LR schedule, zero gradients, counters, progress logs) and must be called after
// every micro batch. All ranks must make the same calls in the same order.
//
// What it reports (docs/monitoring.md): progress and throughput lines every steps_per_print
// steps; with tensorboard/csv_monitor, DeepSpeed's Train/Samples/* events (rank 0); with
// wall_clock_breakdown, the phase timings; with flops_profiler, the model's profile at
// profile_step (rank 0); with comms_logger, every collective, summarised when it is destroyed.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include <deepspeed/checkpoint.h>
#include <deepspeed/comm.h>
#include <deepspeed/config.h>
#include <deepspeed/data_loader.h>
#include <deepspeed/groups.h>
#include <deepspeed/memory_report.h>
#include <deepspeed/lr_schedules.h>
#include <deepspeed/monitor.h>
#include <deepspeed/optimizer.h>

namespace deepspeed {

class AutocastGuard;
class FlopsProfiler;
class OptimizerWrapper;
class Timers;
class ThroughputTimer;
class WallClockBreakdown;

// While it lives, ZeRO stage 3's parameters are whole on every rank (DeepSpeed's
// deepspeed.zero.GatheredParameters): for reading or saving the weights outside forward and
// backward. Creating it is collective. Below stage 3 it does nothing.
class GatheredParameters {
 public:
  explicit GatheredParameters(std::function<void()> release = {}) : release_(std::move(release)) {}
  ~GatheredParameters() {
    if (release_) release_();
  }
  GatheredParameters(GatheredParameters&& o) noexcept : release_(std::exchange(o.release_, {})) {}
  GatheredParameters& operator=(GatheredParameters&&) = delete;
  GatheredParameters(const GatheredParameters&) = delete;

 private:
  std::function<void()> release_;
};

class Engine;

// Engine::no_sync()'s scope: gradient reduction is skipped until it is destroyed.
class NoSync {
 public:
  explicit NoSync(Engine& engine) : engine_(&engine) {}
  ~NoSync();
  NoSync(NoSync&& o) noexcept : engine_(std::exchange(o.engine_, nullptr)) {}
  NoSync& operator=(NoSync&&) = delete;
  NoSync(const NoSync&) = delete;

 private:
  Engine* engine_;
};

class Engine {
 public:
  // `groups`: the job's process groups (initialize builds them from the config or takes the
  // user's mpu). `tensor_parallel_parameters`: the parameters the model splits across the
  // tensor-parallel group (Megatron's tensor_model_parallel attribute); they count in the
  // gradient norm on every tensor rank, the others only on tensor rank 0.
  // `counted_elsewhere`: parameters that another rank of the model-parallel group holds too
  // and counts in the norm (a pipeline's tied weights on the stages after the first).
  Engine(torch::nn::AnyModule model, std::shared_ptr<torch::nn::Module> module,
         DeepSpeedConfig config, std::shared_ptr<Groups> groups,
         std::shared_ptr<Optimizer> optimizer, std::shared_ptr<LRScheduler> lr_scheduler,
         const std::vector<torch::Tensor>& tensor_parallel_parameters = {},
         const std::vector<torch::Tensor>& counted_elsewhere = {});
  // With comms_logger, rank 0 prints the summary of what was logged and not yet printed by
  // comm::log_summary() (without a collective, so it is safe while an error unwinds).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Calls the model's forward with these arguments and returns what it returns, as a
  // `Return` (torch::Tensor unless named: engine.forward<std::tuple<torch::Tensor,
  // torch::Tensor>>(x)); a model whose forward returns another type is an EngineError naming
  // that type. The engine initialize() returns for a model of a known type (ModelEngine,
  // deepspeed/model_engine.h) deduces the type instead.
  // With fp16.auto_cast, floating-point tensor arguments are cast to the model's dtype.
  // With torch_autocast, the forward runs under LibTorch's autocast.
  template <typename Return = torch::Tensor, typename... Args>
  Return forward(Args&&... args) {
    static_assert(!std::is_reference_v<Return> && !std::is_void_v<Return>,
                  "Engine::forward<Return>: the model's result is returned by value; name a value type "
                  "(a model whose forward returns a reference or void goes through ModelEngine::forward)");
    auto value = run_forward([&] { return any_forward(auto_cast(std::forward<Args>(args))...); }, args...);
    if (auto* result = value.template try_get<Return>()) return std::move(*result);
    throw_forward_result_type(value.type_info(), typeid(Return));
  }
  template <typename Return = torch::Tensor, typename... Args>
  Return operator()(Args&&... args) {
    return forward<Return>(std::forward<Args>(args)...);
  }

  // Backpropagates loss / gradient_accumulation_steps (when scale_wrt_gas), multiplied by
  // the current loss scale with fp16, and reduces gradients across ranks (at a boundary;
  // every micro batch under ZeRO-2). Returns loss / gradient_accumulation_steps, unscaled.
  torch::Tensor backward(const torch::Tensor& loss, bool retain_graph = false,
                         bool scale_wrt_gas = true);
  // Call after every micro batch, after its backward(): a step() with no backward() since
  // the last one is an EngineError (it would count a micro batch without gradients), and so
  // is a step() inside no_sync(). Updates the model at accumulation boundaries. In fp32 a
  // step whose gradients hold NaN or inf is, per the config's "nonfinite_gradients", an
  // EngineError on every rank (the default: nothing is updated, the last checkpoint stays
  // the last good state), skipped (counted in skipped_steps()), or applied (DeepSpeed).
  void step();

  // While the result lives, backward() does not reduce gradients across ranks: they add up
  // in each rank's own .grad until a backward() outside it (DeepSpeed's engine.no_sync()).
  // step() inside it is an EngineError, so is a second one while one lives, and so is
  // asking for it at ZeRO stage 2 or 3 (their gradients are partitioned by the reduction).
  [[nodiscard]] NoSync no_sync();

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
  // (On a GPU the norm stays there until asked for: asking waits for the step to finish.)
  std::optional<double> get_global_grad_norm() const;

  // The loss scale backward uses now (dynamic with fp16 loss_scale 0; 1.0 without fp16).
  double cur_scale() const;
  // DeepSpeed's engine.loss_scale(): the configured static scale (0 = dynamic).
  double loss_scale() const { return config_.fp16.loss_scale; }
  // The model's parameter dtype: Half with fp16, BFloat16 with bf16, else Float.
  torch::ScalarType model_dtype() const { return model_dtype_; }
  // What this rank holds now (see MemoryReport).
  MemoryReport memory_report() const;
  // ZeRO-3: every parameter whole on every rank until the result is destroyed (collective).
  // Reading a parameter outside forward and backward gathers it anyway, but that gather is a
  // collective too: every rank must read the same parameters in the same order.
  [[nodiscard]] GatheredParameters gathered_parameters();
  // DeepSpeed's class name of the optimizer wrapper ("FP16_Optimizer", "DeepSpeedZeroOptimizer", ...).
  std::string optimizer_wrapper_name() const;

  int64_t global_steps() const { return global_steps_; }
  int64_t global_samples() const { return global_samples_; }
  int64_t micro_steps() const { return micro_steps_; }
  int64_t skipped_steps() const { return skipped_steps_; }
  int64_t global_rank() const { return group_->rank(); }
  int64_t local_rank() const { return group_->local_rank(); }
  int64_t world_size() const { return group_->size(); }
  // DeepSpeed's dp_world_size / mp_world_size / seq_dp_world_size / sequence_parallel_size.
  int64_t dp_world_size() const { return groups_->data_parallel()->size(); }
  int64_t mp_world_size() const { return groups_->model_parallel()->size(); }
  int64_t seq_dp_world_size() const { return groups_->sequence_data_parallel()->size(); }
  int64_t sequence_parallel_size() const { return groups_->sequence_parallel()->size(); }
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
  // The whole job's group (every rank).
  const std::shared_ptr<comm::ProcessGroup>& process_group() const { return group_; }
  // Every group of the job (data, model, tensor, pipe, sequence, expert); also the engine's mpu.
  const std::shared_ptr<Groups>& groups() const { return groups_; }
  // Where gradients are averaged and ZeRO partitions: data x sequence parallel ranks.
  const std::shared_ptr<comm::ProcessGroup>& data_parallel_group() const { return dp_group_; }
  // The monitors the config enables (DeepSpeed's engine.monitor): the user's own events can
  // go there too, e.g. {{"Eval/accuracy", acc, engine->global_samples()}}; rank 0 writes.
  MonitorMaster& monitor() { return *monitor_; }

  // Checkpoints (docs/checkpointing.md; implemented in engine_checkpoint.cpp).
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
  // DeepSpeed's save_16bit_model: the module's state dict in the model's dtype, whole,
  // written by rank 0 to save_dir/save_filename (atomically; torch.load reads it). Under
  // ZeRO-3 the parameters are gathered first, and only when
  // zero_optimization.stage3_gather_16bit_weights_on_model_save is on; otherwise nothing is
  // written and it returns false, with DeepSpeed's warning. Every rank must call it.
  bool save_16bit_model(const std::string& save_dir, const std::string& save_filename = "pytorch_model.bin");
  // Where checkpoint files go (default: local files, written atomically).
  void set_checkpoint_storage(std::shared_ptr<CheckpointStorage> storage) { checkpoint_storage_ = std::move(storage); }

 protected:
  // For an engine that runs its own passes (the pipeline engine): `autograd` (which may be
  // empty) between the optimizer wrapper's backward hooks; `reduce`: the gradients accumulated
  // so far are reduced across the data-parallel group when it returns. The caller scales
  // what it backpropagates (cur_scale(), gradient accumulation) itself. Counts as the
  // backward() that step() requires.
  void run_backward_pass(const std::function<void()>& autograd, bool reduce);

  // Checkpoint hooks for an engine that keeps its module elsewhere than the model-states
  // file's "module" entry (the pipeline engine: DeepSpeed's one file per layer).
  // Save: the "module" entry of this rank's model-states file (default: the module's state
  // dict), with `files` receiving other files this rank writes (name in the tag folder, dict).
  // Called on every rank; the model-states file itself is written by data-parallel rank 0.
  using CheckpointFiles = std::vector<std::pair<std::string, c10::IValue>>;
  virtual c10::IValue module_checkpoint_entry(CheckpointFiles& files) const;
  // Entries of our own added to the model-states dict (their keys must be listed as the
  // engine's in src/checkpoint/model_states.cpp).
  virtual void add_checkpoint_entries(c10::impl::GenericDict& /*states*/) const {}
  // Load: the model-states dict as the optimizer wrapper reads it, from the one read for this
  // rank and the checkpoint's other files. `read` reads a file of the tag folder by name,
  // `has` says whether it has one; `saved_mp_world_size` is the saving run's.
  struct CheckpointFileAccess {
    std::function<c10::impl::GenericDict(const std::string&)> read;
    std::function<bool(const std::string&)> has;
    int64_t saved_mp_world_size = 1;
    int64_t saved_dp_world_size = 1;
    bool load_optimizer_states = true;
    bool module_only = false;
  };
  virtual c10::impl::GenericDict prepare_loaded_states(const c10::impl::GenericDict& states,
                                                       const CheckpointFileAccess& /*files*/) const {
    return states;
  }
  // Under ZeRO: the optim-states files (whole dicts, and names for errors) the optimizer
  // wrapper loads, where they are not every saved data-parallel rank's file of this rank's
  // model-parallel rank (a pipeline of another layout); `states` is prepare_loaded_states'
  // result, whose param_shapes must then describe them.
  struct ZeroStateFiles {
    std::vector<c10::impl::GenericDict> files;
    std::vector<std::string> names;
  };
  virtual std::optional<ZeroStateFiles> restaged_zero_state_files(c10::impl::GenericDict& /*states*/,
                                                                  const CheckpointFileAccess& /*files*/) const {
    return std::nullopt;
  }
  // Whether a checkpoint saved with another model-parallel size loads (a pipeline saved with
  // another number of stages does; the default refuses, as DeepSpeed).
  virtual bool loads_other_model_parallel_size() const { return false; }

  // The model's forward, `call`, between the engine's forward bookkeeping (timers, autocast,
  // ZeRO-3's gathering, the flops profiler); `args` are the caller's, to explain a failure.
  template <typename Call, typename... Args>
  decltype(auto) run_forward(Call&& call, const Args&... args) {
    begin_forward();
    const ForwardScope scope{*this};  // ends the forward (timers, autocast) even if it throws
    try {
      return call();
    } catch (const c10::Error& e) {
      std::vector<torch::ScalarType> input_dtypes;
      (note_input_dtype(input_dtypes, args), ...);
      explain_forward_error(e, input_dtypes);
      throw;
    }
  }
  template <typename T>
  decltype(auto) auto_cast(T&& arg) const {
    if constexpr (std::is_same_v<std::decay_t<T>, torch::Tensor>) {
      return cast_input(arg);
    } else {
      return std::forward<T>(arg);
    }
  }

 private:
  template <typename T>
  static void note_input_dtype(std::vector<torch::ScalarType>& dtypes, const T& arg) {
    if constexpr (std::is_same_v<T, torch::Tensor>) {
      if (arg.defined()) dtypes.push_back(arg.scalar_type());
    }
  }
  torch::Tensor cast_input(const torch::Tensor& t) const;
  struct ForwardScope {
    Engine& engine;
    int exceptions = std::uncaught_exceptions();
    // Unwinding from a failed forward: timers and autocast end, nothing collective runs.
    ~ForwardScope() { engine.end_forward(std::uncaught_exceptions() == exceptions); }
  };
  friend class NoSync;
  template <typename... Args>
  torch::nn::AnyValue any_forward(Args&&... args) {
    if (model_.is_empty()) throw_no_type_erased_forward();
    return model_.any_forward(std::forward<Args>(args)...);
  }
  [[noreturn]] void throw_no_type_erased_forward() const;
  [[noreturn]] void throw_forward_result_type(const std::type_info& returned, const std::type_info& asked) const;
  // Explains a forward that LibTorch refused when a floating-point input's dtype is not the
  // model's (bf16/fp16 parameters, fp32 inputs); otherwise returns and the error goes on.
  void explain_forward_error(const c10::Error& error, const std::vector<torch::ScalarType>& input_dtypes) const;
  void end_no_sync() { no_sync_ = false; }
  void begin_forward();
  void end_forward(bool completed = true);
  void take_model_step();
  void on_nonfinite_gradients();
  void log_progress();
  void report_step(bool boundary);
  void print_flops_profile(const std::optional<std::array<double, 3>>& fwd_bwd_step_ms);

  torch::nn::AnyModule model_;
  std::shared_ptr<torch::nn::Module> module_;
  DeepSpeedConfig config_;
  std::shared_ptr<comm::ProcessGroup> group_;     // the world
  std::shared_ptr<Groups> groups_;
  std::shared_ptr<comm::ProcessGroup> dp_group_;  // groups_->sequence_data_parallel()
  std::shared_ptr<Optimizer> optimizer_;
  std::shared_ptr<LRScheduler> lr_scheduler_;
  std::shared_ptr<DataLoader> training_dataloader_;
  torch::Device device_;
  std::vector<torch::Tensor> parameters_;  // trainable, in registration order
  std::unique_ptr<OptimizerWrapper> wrapper_;
  std::unique_ptr<AutocastGuard> autocast_;  // held during a forward with torch_autocast
  torch::ScalarType model_dtype_ = torch::kFloat32;
  std::unique_ptr<Timers> timers_;
  std::unique_ptr<ThroughputTimer> throughput_;
  std::unique_ptr<WallClockBreakdown> wall_clock_;  // with wall_clock_breakdown
  std::unique_ptr<MonitorMaster> monitor_;
  torch::Tensor window_loss_;                       // sum of loss/GAS since the last boundary (monitors)
  std::unique_ptr<FlopsProfiler> flops_profiler_;   // rank 0, with flops_profiler.enabled
  bool profile_pending_ = false;                    // a profiled forward waits for its step's print

  int64_t global_steps_ = 0;
  int64_t global_samples_ = 0;
  int64_t micro_steps_ = 0;
  int64_t skipped_steps_ = 0;
  std::optional<bool> boundary_override_;
  bool no_sync_ = false;               // a NoSync lives
  bool backward_since_step_ = false;   // step() needs a backward() before it
  bool step_applied_ = false;
  torch::Tensor global_grad_norm_;  // 0-dim, on the device; undefined: none
  // The losses of the current accumulation window (detached), read only to explain a step
  // with non-finite gradients.
  std::vector<torch::Tensor> window_losses_;
  std::shared_ptr<CheckpointStorage> checkpoint_storage_;  // null: CheckpointStorage's defaults
};

inline NoSync::~NoSync() {
  if (engine_) engine_->end_no_sync();
}

// How initialize() builds the engine from the constructor's arguments: an Engine, or a
// ModelEngine<Model> for a model whose type it knows (deepspeed/model_engine.h).
using EngineFactory = std::function<std::shared_ptr<Engine>(
    torch::nn::AnyModule, std::shared_ptr<torch::nn::Module>, DeepSpeedConfig, std::shared_ptr<Groups>,
    std::shared_ptr<Optimizer>, std::shared_ptr<LRScheduler>, const std::vector<torch::Tensor>&)>;
template <typename EngineType>
EngineFactory engine_factory() {
  return [](auto&&... args) -> std::shared_ptr<Engine> {
    return std::make_shared<EngineType>(std::forward<decltype(args)>(args)...);
  };
}

}  // namespace deepspeed
