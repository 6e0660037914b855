// ZeRO stage 0: every rank holds everything; gradients are all-reduced in buckets while
// backward runs (GradientReducer), and every rank applies the same update.
//
// fp32: the user's optimizer steps the module's parameters directly (DeepSpeed's raw
// optimizer). fp16/bf16 (DeepSpeed's FP16_Optimizer, and its bf16 use): the module holds
// half-precision parameters, the optimizer steps fp32 master copies, one per parameter, and
// the result is copied back; fp16 scales the loss (docs/config.md, "Mixed precision and loss
// scaling": stage 0's algorithm, LossScaler's Plain).
#pragma once

#include <memory>
#include <vector>

#include <deepspeed/comm.h>
#include <deepspeed/config.h>
#include <deepspeed/optimizer.h>

#include "runtime/step/expert_parameters.h"
#include "runtime/step/gradient_reducer.h"
#include "runtime/step/optimizer_wrapper.h"

namespace deepspeed {

class DataParallelOptimizer final : public OptimizerWrapper {
 public:
  // `parameters`: the module's trainable parameters, in registration order, already in the
  // model's dtype. The optimizer's groups must hold exactly these tensors; with a
  // half-precision model they are replaced by their fp32 masters.
  // `group`: the data-parallel group gradients are averaged over.
  DataParallelOptimizer(std::vector<torch::Tensor> parameters, std::shared_ptr<comm::ProcessGroup> group,
                        const DeepSpeedConfig& config, std::shared_ptr<Optimizer> optimizer,
                        ModelParallelGradients model_parallel = {}, ExpertParameters experts = {});

  std::string name() const override;
  void before_backward(bool boundary) override;
  void after_backward(bool boundary) override;
  void zero_grad() override;
  MemoryReport memory_report() const override;
  double last_communication_wait() const override;

  void add_to_model_states(checkpoint::ModelStates& states, const torch::nn::Module& module,
                           const DeepSpeedConfig& config) const override;
  void load_checkpoint(const CheckpointLoad& load) override;
  std::vector<torch::Tensor> optimizer_tensor_parameters() const override;

  // fp32 masters, parallel to the module's parameters (empty for an fp32 model).
  const std::vector<torch::Tensor>& masters() const { return masters_; }
  // Writes the masters into the module's parameters (after a checkpoint set the masters).
  void copy_masters_to_parameters();
  // Makes the masters from the module's parameters (after a checkpoint set the weights).
  void refresh_masters_from_parameters();

 private:
  GradientVerdict check_gradients(bool norm_wanted) override;
  bool norm_wanted(double gradient_clipping) const override;
  torch::Tensor global_squared_norm() override;
  // The fp32 masters are updated and written into the half-precision parameters in one pass.
  void update(const torch::Tensor& grad_scale) override;
  std::vector<torch::Tensor> gradients() const;
  // A verdict every rank of the replica (and, with experts, of the data-parallel group) shares.
  bool agreed(bool local) const;

  std::vector<torch::Tensor> parameters_;
  std::shared_ptr<comm::ProcessGroup> group_;
  std::shared_ptr<Optimizer> optimizer_;
  std::unique_ptr<GradientReducer> reducer_;  // the parameters every data-parallel rank holds
  // Mixture of Experts: per expert group, its parameters' reducer (over the
  // expert-data-parallel group) and the group whose ranks hold the other experts.
  struct Experts {
    std::unique_ptr<GradientReducer> reducer;
    std::vector<torch::Tensor> parameters;
    std::shared_ptr<comm::ProcessGroup> expert_parallel;
  };
  std::vector<Experts> experts_;
  std::vector<bool> is_expert_;  // per parameters_
  std::vector<torch::Tensor> masters_;
  // For each tensor of the optimizer, in group order: its index in parameters_ (-1: none;
  // with fp32, a tensor the client optimizer holds that the model does not train).
  std::vector<int64_t> optimizer_order_;
  // This step's gradients are each rank's own: the optimizer said it averages them itself
  // (Optimizer::needs_averaged_gradients, the 1-bit optimizers after their warm-up).
  bool local_gradients_ = false;
  bool fp16_ = false;
  bool check_overflow_ = false;
  bool check_nonfinite_ = false;  // fp32 with "nonfinite_gradients" other than "apply"
};

}  // namespace deepspeed
