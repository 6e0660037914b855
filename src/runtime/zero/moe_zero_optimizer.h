// ZeRO stages 1 and 2 for a model with MoE layers (docs/moe.md): as DeepSpeed's
// real_dp_process_group, each optimizer group is partitioned over the ranks that hold the same
// tensors: the dense groups over the data-parallel group, each expert group (DeepSpeed's "moe"
// groups, made by split_params_into_different_moe_groups_for_optimizer) over its
// expert-data-parallel group, its gradients summed there and divided by the data-parallel size.
// One ZeroOptimizer per process group does the work; this one steps them as one: one verdict
// agreed over the data-parallel group, one norm counting every expert once, one optimizer pass.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/step/expert_parameters.h"
#include "runtime/zero/zero_optimizer.h"

namespace deepspeed {

class MoeZeroOptimizer final : public OptimizerWrapper {
 public:
  // `experts`: the MoE layers' parameters by expert-parallel size. Throws EngineError where an
  // optimizer group mixes experts with other tensors (or experts of two expert-parallel sizes),
  // or no group holds experts (DeepSpeed's assertion).
  MoeZeroOptimizer(std::vector<torch::Tensor> parameters, std::shared_ptr<comm::ProcessGroup> group,
                   const DeepSpeedConfig& config, std::shared_ptr<Optimizer> optimizer,
                   ModelParallelGradients model_parallel, const ExpertParameters& experts);

  std::string name() const override { return "DeepSpeedZeroOptimizer"; }
  void before_backward(bool boundary) override;
  void after_backward(bool boundary) override;
  void zero_grad() override;
  MemoryReport memory_report() const override;
  double last_communication_wait() const override;
  // Checkpoints (docs/moe.md, "Checkpoints"): the dense groups in DeepSpeed's ZeRO files, the
  // experts' groups whole in the expp_rank files, so that they load with another
  // expert-parallel or data-parallel size.
  void add_to_model_states(checkpoint::ModelStates& states, const torch::nn::Module& module,
                           const DeepSpeedConfig& config) const override;
  std::optional<c10::impl::GenericDict> optim_states_file(const torch::nn::Module& module,
                                                          const DeepSpeedConfig& config) const override;
  std::optional<ExpertOptimizerState> expert_optimizer_state(const torch::nn::Module& module,
                                                             const GlobalName& global_name) const override;
  std::vector<std::vector<std::string>> expert_optimizer_names(const torch::nn::Module& module,
                                                               const GlobalName& global_name) const override;
  void load_checkpoint(const CheckpointLoad& load) override;

 private:
  void begin_step() override;
  GradientVerdict check_gradients(bool norm_wanted) override;
  torch::Tensor global_squared_norm() override;
  void update(const torch::Tensor& grad_scale) override;
  void write_model_copies() override;

  // Every expert tensor as (optimizer group, expert part, index in the part's parameters()),
  // by group, then in registration order: the order of the expp_rank files' state.
  struct ExpertTensor {
    size_t group, part, index;
  };
  std::vector<ExpertTensor> expert_tensors() const;

  struct ExpertPart {
    std::unique_ptr<ZeroOptimizer> zero;  // over the expert-data-parallel group
    std::shared_ptr<comm::ProcessGroup> expert_parallel;
  };
  std::shared_ptr<comm::ProcessGroup> group_;
  std::shared_ptr<Optimizer> optimizer_;
  std::unique_ptr<ZeroOptimizer> dense_;  // over the data-parallel group
  std::vector<ExpertPart> experts_;
};

}  // namespace deepspeed
