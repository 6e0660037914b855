// What stands between the engine and the user's optimizer (DeepSpeed's "optimizer wrapper":
// the raw optimizer, FP16_Optimizer, BF16_Optimizer, the ZeRO optimizer). It owns how
// gradients are reduced across ranks, in which precision the update is computed, and how
// parameters and optimizer state are partitioned. The engine only calls these methods, in
// this order: before_forward, (the model), after_forward, before_backward, (autograd),
// after_backward for every micro batch, then step at each accumulation boundary.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Dict.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <deepspeed/config.h>
#include <deepspeed/memory_report.h>
#include <deepspeed/optimizer.h>

#include "checkpoint/model_states.h"
#include "runtime/step/loss_scaler.h"
#include "runtime/step/model_parallel_gradients.h"

namespace deepspeed {

class OptimizerWrapper {
 public:
  virtual ~OptimizerWrapper() = default;

  // DeepSpeed's class name for the log line ("FP16_Optimizer", "DeepSpeedZeroOptimizer", ...).
  virtual std::string name() const = 0;
  // The scale backward multiplies the loss by (1.0 without fp16).
  double loss_scale() const { return scaler_.scale(); }
  LossScaler& loss_scaler() { return scaler_; }
  const LossScaler& loss_scaler() const { return scaler_; }

  // Around the model's forward (ZeRO-3 gathers parameters while it runs); after_forward
  // learns whether a backward will follow (grad mode was on).
  virtual void before_forward() {}
  virtual void after_forward(bool /*backward_follows*/) {}
  virtual void before_backward(bool boundary) = 0;
  virtual void after_backward(bool boundary) = 0;

  struct StepOutcome {
    bool applied = false;                 // false: overflow, the step was skipped
    // fp32 runs: the gradients held NaN or inf and the step was skipped (the engine then
    // applies the config's "nonfinite_gradients"; fp16/bf16 overflows are not this).
    bool nonfinite = false;
    // The unscaled global norm, when one was computed: a 0-dim tensor on the device, read only
    // when someone asks (reading it waits for the GPU).
    torch::Tensor grad_norm;
    LossScaler::Messages messages;        // what the loss scaler has to say (rank 0 logs it)
  };
  // At an accumulation boundary, in the one order every wrapper follows (DeepSpeed's
  // FP16_Optimizer, BF16_Optimizer and ZeRO optimizers step so): the gradients' verdict, the
  // loss-scale update, then the global norm, the unscale-and-clip factor, the update of the
  // (fp32) weights the optimizer holds, clearing the gradients, and writing the model's copies.
  // Skipped steps clear the gradients too. An fp32 run's NaN/inf is no scaling problem: its
  // step is skipped before the loss scaler hears of it.
  StepOutcome step(double gradient_clipping);
  // Clears the gradients of the current accumulation (the module's and any partitions').
  virtual void zero_grad() = 0;
  virtual MemoryReport memory_report() const = 0;
  // ZeRO-3: the parameters are partitioned and gathered as operations need them; then
  // gather_all_parameters() makes every one whole until release_all_parameters() (both
  // collective). Below stage 3 they are whole anyway and both do nothing.
  virtual bool partitions_parameters() const { return false; }
  virtual void gather_all_parameters() {}
  virtual void release_all_parameters() {}
  // Seconds the last after_backward waited for communication.
  virtual double last_communication_wait() const { return 0.0; }

  // Checkpoints, in DeepSpeed's layout (docs/checkpointing.md, "What is saved"). The engine
  // decides the files and writes what is not the wrapper's (counters, LR schedule, RNG).
  //
  // The model states' optimizer entries: stage 0's "optimizer" (FP16_Optimizer's dict with
  // fp16/bf16, the optimizer's own in fp32), ZeRO's "param_shapes" and "shared_params".
  virtual void add_to_model_states(checkpoint::ModelStates& states, const torch::nn::Module& module,
                                   const DeepSpeedConfig& config) const = 0;
  // ZeRO: this rank's optim-states file (collective over the data-parallel group); the other
  // wrappers keep their state in the model states and return nothing.
  virtual std::optional<c10::impl::GenericDict> optim_states_file(const torch::nn::Module& /*module*/,
                                                                  const DeepSpeedConfig& /*config*/) const {
    return std::nullopt;
  }
  // The module parameter behind each tensor of the optimizer's groups, in group order (undefined
  // where there is none), when the optimizer steps whole parameters (stage 0): what names the
  // optimizer state when a checkpoint moves it between ranks (MoE experts). Empty otherwise.
  virtual std::vector<torch::Tensor> optimizer_tensor_parameters() const { return {}; }
  // MoE under ZeRO: the experts' optimizer state for the expp_rank files, every tensor whole,
  // named per optimizer group by `global_name(module name)` (empty lists for groups without
  // experts; "names" lists them, "numels" their sizes, "optimizer" the state). Collective over the
  // data-parallel group. Nothing from the other wrappers.
  using GlobalName = std::function<std::string(const std::string&)>;
  struct ExpertOptimizerState {
    c10::IValue optimizer;
    std::vector<std::vector<std::string>> names;
    std::vector<std::vector<int64_t>> numels;
  };
  virtual std::optional<ExpertOptimizerState> expert_optimizer_state(const torch::nn::Module& /*module*/,
                                                                     const GlobalName& /*global_name*/) const {
    return std::nullopt;
  }
  // ... and the names this rank's experts' state is loaded by, in that order (empty: none).
  virtual std::vector<std::vector<std::string>> expert_optimizer_names(const torch::nn::Module& /*module*/,
                                                                       const GlobalName& /*global_name*/) const {
    return {};
  }
  struct CheckpointLoad {
    torch::nn::Module& module;
    const c10::impl::GenericDict& model_states;  // the model-states file's dict ...
    const std::string& file;                      // ... and its name, for errors
    // ZeRO: every saved data-parallel rank's optim-states dict in rank order, and their names.
    const std::vector<c10::impl::GenericDict>& optim_states;
    const std::vector<std::string>& optim_state_files;
    bool strict = true;                 // every module entry must match
    bool load_optimizer_states = true;
    bool module_only = false;           // the weights alone; the optimizer starts from them
    // MoE under ZeRO: the experts' state in expert_optimizer_names()' order (the "optimizer" of
    // an ExpertOptimizerState, reassembled for this rank); null otherwise.
    const c10::IValue* expert_optimizer = nullptr;
  };
  // Puts the module's weights where this wrapper keeps them (the model, the fp32 masters, the
  // partitions) and, unless module_only, its optimizer state, resharded to this run's
  // data-parallel size. Collective under ZeRO. Clears the gradients.
  virtual void load_checkpoint(const CheckpointLoad& load) = 0;

 protected:
  OptimizerWrapper(LossScalerOptions scaler, ModelParallelGradients model_parallel)
      : scaler_(scaler), model_parallel_(std::move(model_parallel)) {}

  // The steps of step(), each agreed over the data- and model-parallel ranks that must agree.
  struct GradientVerdict {
    bool overflow = false;   // fp16/bf16: inf/NaN; the loss scaler learns of it, the step is skipped
    bool nonfinite = false;  // fp32: NaN/inf; the step is skipped
    // The global squared norm of the (scaled) gradients, where finding the verdict computed it.
    torch::Tensor squared_norm;
  };
  virtual void begin_step() {}
  // `norm_wanted`: the step will need the norm (a check that computes it anyway returns it).
  virtual GradientVerdict check_gradients(bool norm_wanted) = 0;
  // Whether the norm is needed (clipping, or reporting it) when no check computed it.
  virtual bool norm_wanted(double /*gradient_clipping*/) const { return true; }
  // The global squared norm of the gradients: over this rank's share, its data-parallel group
  // and its model-parallel group, each element counted once.
  virtual torch::Tensor global_squared_norm() = 0;
  // The optimizer's update with gradients multiplied by `grad_scale` (a 0-dim float64 tensor).
  virtual void update(const torch::Tensor& grad_scale) = 0;
  // After the gradients are cleared: the model's parameters take the updated weights.
  virtual void write_model_copies() {}

  LossScaler scaler_;
  // Agreement of overflow and norm with the other ranks of this model replica.
  ModelParallelGradients model_parallel_;
};

// Bytes of per-element optimizer state (exp_avg, exp_avg_sq, ...: state tensors as large as
// the tensor they belong to); scalar counters such as `step` are not counted.
int64_t optimizer_state_bytes(const Optimizer& optimizer);

}  // namespace deepspeed
