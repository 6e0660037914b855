// The pipeline engine (DeepSpeed's PipelineEngine): what initialize() returns for a
// pipe::PipelineModule. One train_batch() runs gradient_accumulation_steps micro batches
// through DeepSpeed's 1F1B TrainSchedule (<deepspeed/pipe_schedule.h>) and takes one optimizer
// step; forward(), backward() and step() are not for pipeline models.
//
// Promises: every rank of the job calls train_batch() / eval_batch() together. Only the first
// and the last stage read data (inputs on the first, labels on the last); activations (a
// tensor or a tuple, pipe::Activation) go forward and the gradients of their floating-point
// tensors backward, point to point over the pipe group, their shapes and dtypes sent once and
// reused (reset_activation_shape() when they change), or before every send with the module's
// dynamic_shape. Gradients are averaged
// over the data-parallel group (ZeRO stage 0 or 1), tied weights' gradients summed over the
// stages that hold them, and the clipping norm is the whole model's (pipe and data groups,
// tied weights once). The loss returned is the mean over the micro batches and the
// data-parallel ranks, the same on every rank.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <deepspeed/engine.h>
#include <deepspeed/initialize.h>
#include <deepspeed/pipe.h>
#include <deepspeed/pipe_schedule.h>

namespace deepspeed {

// One micro batch: `inputs` feed the first stage, `labels` the last stage's loss_fn.
// `input_tuple`, where not empty, feeds the first stage a tuple instead (DeepSpeed's batch[0]
// as a tuple; its first layer takes tuples).
struct PipeBatch {
  torch::Tensor inputs;
  torch::Tensor labels;
  std::vector<torch::Tensor> input_tuple = {};
};
// Called once per micro batch on the first and the last stage (DeepSpeed's data_iter).
using PipeDataIterator = std::function<PipeBatch()>;
// A loader's batches forever, epoch after epoch (DeepSpeed's RepeatingLoader).
PipeDataIterator repeating_iterator(std::shared_ptr<DataLoader> loader);

// What eval_batch returns (DeepSpeed's eval_output, and its logits with return_logits).
struct EvalBatchOutput {
  // reduce_output "avg": the mean over micro batches and data-parallel ranks of the losses (or,
  // without compute_loss, of the outputs) on the last stage; with compute_loss and bcast_loss,
  // the last stage's value on every stage. Undefined where a stage has none.
  torch::Tensor loss;
  // reduce_output "none": each micro batch's loss (or output), on the last stage.
  std::vector<torch::Tensor> outputs;
  // return_logits: the last micro batch's outputs, on the last stage.
  torch::Tensor logits;
};

class PipelineEngine : public Engine {
 public:
  // initialize() builds it; `module` must be a pipe::PipelineModule and `groups` its mpu().
  PipelineEngine(torch::nn::AnyModule model, std::shared_ptr<torch::nn::Module> module, DeepSpeedConfig config,
                 std::shared_ptr<Groups> groups, std::shared_ptr<Optimizer> optimizer,
                 std::shared_ptr<LRScheduler> lr_scheduler, const std::vector<torch::Tensor>& tensor_parallel_parameters);

  // One batch: gradient_accumulation_steps micro batches from data_iter (or, without one,
  // from the training data given to initialize), one optimizer step. Returns the mean loss.
  torch::Tensor train_batch(const PipeDataIterator& data_iter);
  torch::Tensor train_batch();
  // Forward passes only (InferenceSchedule), under NoGradGuard; DeepSpeed's arguments in its
  // order. compute_loss: the loss_fn on the last stage (else its outputs are what is reduced);
  // reduce_output: "avg" (any case) or "none"; bcast_loss: the last stage's "avg" loss
  // broadcast over the pipe group (also done whenever a monitor is on, for rank 0's event);
  // num_micro_batches 0: gradient_accumulation_steps.
  EvalBatchOutput eval_batch(const PipeDataIterator& data_iter, bool return_logits = false, bool compute_loss = true,
                             const std::string& reduce_output = "avg", bool bcast_loss = true,
                             int64_t num_micro_batches = 0);

  bool is_first_stage() const { return stage_id_ == 0; }
  bool is_last_stage() const { return stage_id_ == num_stages_ - 1; }
  int64_t stage_id() const { return stage_id_; }
  int64_t num_stages() const { return num_stages_; }
  // Whether activations (gradients) cross stages split over the tensor-parallel group
  // ("pipeline": {"pipe_partitioned" / "grad_partitioned"}, with tensor parallelism only).
  bool is_pipe_partitioned() const { return pipe_partitioned_; }
  bool is_grad_partitioned() const { return grad_partitioned_; }
  pipe::PipelineModule& pipeline_module() const { return *pipe_module_; }
  // The next micro batch's activations may have another shape: stages exchange shapes again.
  // Every stage must call it before the same batch.
  void reset_activation_shape();

  // Not for pipeline models: train_batch() runs the passes (DeepSpeed raises the same).
  template <typename... Args>
  void forward(Args&&...) = delete;
  torch::Tensor backward(const torch::Tensor& loss, bool retain_graph = false, bool scale_wrt_gas = true);
  void step();

  // The last train_batch's mean loss (DeepSpeed's agg_train_loss).
  const torch::Tensor& agg_train_loss() const { return agg_train_loss_; }

 private:
  // Checkpoints in DeepSpeed's pipeline layout (docs/pipeline.md, "Checkpoints").
  c10::IValue module_checkpoint_entry(CheckpointFiles& files) const override;
  void add_checkpoint_entries(c10::impl::GenericDict& states) const override;
  c10::impl::GenericDict prepare_loaded_states(const c10::impl::GenericDict& states,
                                               const CheckpointFileAccess& files) const override;
  std::optional<ZeroStateFiles> restaged_zero_state_files(c10::impl::GenericDict& states,
                                                         const CheckpointFileAccess& files) const override;
  bool loads_other_model_parallel_size() const override { return true; }
  // Whether the checkpoint was saved with this run's stages and partition.
  bool saved_with_this_layout(const c10::impl::GenericDict& states, const CheckpointFileAccess& files) const;

  struct Buffers {
    std::vector<pipe::Activation> inputs, outputs;
    std::vector<torch::Tensor> labels;
  };
  void run_schedule(const pipe::Schedule& schedule);
  void load_micro_batch(int64_t buffer);
  void forward_pass(int64_t buffer);
  void backward_pass(int64_t buffer);
  void send_activation(int64_t buffer);
  void recv_activation(int64_t buffer);
  void send_grad(int64_t buffer);
  void recv_grad(int64_t buffer);
  void optimizer_step();
  torch::Tensor aggregate_total_loss();
  // Point to point over the pipe group, whole or split over the tensor-parallel group.
  void send_tensor(const torch::Tensor& t, int64_t stage, bool partitioned);
  void recv_tensor(torch::Tensor& t, int64_t stage, bool partitioned);
  // DeepSpeed's shape message for `a` (_send_tensor_meta), and the buffers one describes.
  std::vector<int32_t> tensor_meta(const pipe::Activation& a) const;
  pipe::Activation buffers_for_meta(const torch::Tensor& meta) const;

  pipe::PipelineModule* pipe_module_;
  std::shared_ptr<comm::ProcessGroup> pipe_group_;
  int64_t stage_id_ = 0;
  int64_t num_stages_ = 1;
  bool pipe_partitioned_ = false;
  bool grad_partitioned_ = false;
  Buffers buffers_;
  const PipeDataIterator* data_iter_ = nullptr;
  PipeDataIterator default_iter_;
  bool compute_loss_ = true;
  bool return_logits_ = false;
  torch::Tensor loss_;        // the current micro batch's loss (last stage)
  torch::Tensor total_loss_;  // their sum over the batch
  std::vector<torch::Tensor> fwd_outputs_;
  torch::Tensor logits_;
  // Shapes exchanged once (or every time with dynamic_shape): the shape message this stage
  // sent forward, the buffers it receives activations into, and gradients.
  std::optional<std::vector<int32_t>> sent_meta_;
  std::optional<pipe::Activation> recv_buffers_;
  std::vector<torch::Tensor> grad_buffers_;
  torch::Tensor agg_train_loss_;
  std::chrono::steady_clock::time_point batch_start_;
  double elapsed_since_print_ = 0.0;
};

// initialize() for a pipeline model: the engine is a PipelineEngine over the module's groups.
struct PipelineInitializeResult {
  std::shared_ptr<PipelineEngine> engine;
  std::shared_ptr<Optimizer> optimizer;
  std::shared_ptr<DataLoader> training_dataloader;
  std::shared_ptr<LRScheduler> lr_scheduler;
};
PipelineInitializeResult initialize(std::shared_ptr<pipe::PipelineModule> model, InitializeOptions options = {});
PipelineInitializeResult initialize(const CLI::App& app, std::shared_ptr<pipe::PipelineModule> model,
                                    InitializeOptions options = {});

}  // namespace deepspeed
