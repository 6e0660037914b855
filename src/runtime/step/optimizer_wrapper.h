// What stands between the engine and the user's optimizer (DeepSpeed's "optimizer wrapper":
// the raw optimizer, FP16_Optimizer, BF16_Optimizer, the ZeRO optimizer). It owns how
// gradients are reduced across ranks, in which precision the update is computed, and how
// parameters and optimizer state are partitioned. The engine only calls these methods, in
// this order: before_forward, (the model), after_forward, before_backward, (autograd),
// after_backward for every micro batch, then step at each accumulation boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include <deepspeed/memory_report.h>
#include <deepspeed/optimizer.h>

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
  // At an accumulation boundary: unscale, check overflow, clip, update, clear gradients.
  virtual StepOutcome step(double gradient_clipping) = 0;
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

 protected:
  OptimizerWrapper(LossScalerOptions scaler, ModelParallelGradients model_parallel)
      : scaler_(scaler), model_parallel_(std::move(model_parallel)) {}
  LossScaler scaler_;
  // Agreement of overflow and norm with the other ranks of this model replica.
  ModelParallelGradients model_parallel_;
};

// Bytes of per-element optimizer state (exp_avg, exp_avg_sq, ...: state tensors as large as
// the tensor they belong to); scalar counters such as `step` are not counted.
int64_t optimizer_state_bytes(const Optimizer& optimizer);

}  // namespace deepspeed
