// ZeRO stages 1 and 2 (DeepSpeed's DeepSpeedZeroOptimizer): each of N data-parallel ranks
// owns 1/N of every optimizer group's flattened parameters, holds the fp32 master weights and
// the optimizer state of that partition only, and steps it; the updated partitions are then
// all-gathered into every rank's (full) model parameters.
//
// Stage 1: gradients accumulate in the module's .grad across micro batches and are
// reduce-scattered at the accumulation boundary. Stage 2: every micro batch's gradients are
// reduce-scattered as backward produces them, .grad is released as soon as its bucket has it,
// and each rank accumulates only its own partition of the gradients.
//
// Layout (BucketPlan): a group's parameters, last first, padded to a multiple of N, cut into
// buckets; rank r owns slice r of every bucket, and its partition of a group is those slices
// concatenated: ceil(numel / N) elements. The user's optimizer sees one flat fp32 tensor per
// group (elementwise optimizers give the same result as on the full tensors).
//
// Stage 3 adds PartitionedParameters: the module's parameters themselves are partitioned
// (each rank keeps its shard of every bucket in the model's dtype) and gathered while
// operations need them; buckets are then stage3_prefetch_bucket_size elements (at most
// reduce_bucket_size), and parameters smaller than stage3_param_persistence_threshold are
// placed first in the managed order, so that they share the plan's last buckets, which stay
// gathered.
//
// offload_optimizer {device: cpu}: the masters, their gradients and the optimizer state live
// in (pinned, with CUDA) CPU memory and the step runs there (ZeRO-Offload). offload_param
// {device: cpu} (stage 3): the parameter shards live there.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <vector>

#include <deepspeed/comm.h>
#include <deepspeed/config.h>
#include <deepspeed/optimizer.h>

#include "runtime/step/gradient_reducer.h"
#include "runtime/step/optimizer_wrapper.h"
#include "runtime/zero/gradient_partitions.h"
#include "runtime/zero/partitioned_parameters.h"

namespace deepspeed {

// Which of the optimizer's groups one ZeroOptimizer partitions, and what the average of
// their gradients divides by. A model with MoE layers has one per process group
// (MoeZeroOptimizer): the experts' groups over their expert-data-parallel group, divided by
// the data-parallel size, as DeepSpeed's real_dp_process_group.
struct ZeroOptimizerScope {
  std::vector<bool> groups;       // per optimizer group; empty: every group
  double gradient_divisor = 0.0;  // 0: the size of the group the partitions span
};

class ZeroOptimizer final : public OptimizerWrapper {
 public:
  // `parameters`: the module's trainable parameters in registration order, in the model's
  // dtype. Every tensor of the optimizer's groups (in scope) must be one of them; those
  // groups' tensors are replaced by this rank's flat fp32 partitions. `group`: the
  // data-parallel group the partitions span.
  ZeroOptimizer(std::vector<torch::Tensor> parameters, std::shared_ptr<comm::ProcessGroup> group,
                const DeepSpeedConfig& config, std::shared_ptr<Optimizer> optimizer,
                ModelParallelGradients model_parallel = {}, ZeroOptimizerScope scope = {});
  // Waits for copies still in flight between the device and the host partitions it frees.
  ~ZeroOptimizer() override;

  std::string name() const override { return stage_ == 3 ? "DeepSpeedZeroOptimizer_Stage3" : "DeepSpeedZeroOptimizer"; }
  void before_forward() override;
  void after_forward(bool backward_follows) override;
  void before_backward(bool boundary) override;
  void after_backward(bool boundary) override;
  void zero_grad() override;
  MemoryReport memory_report() const override;
  double last_communication_wait() const override { return reducer_->last_wait_seconds(); }
  // zero_checkpoint.cpp: DeepSpeed's optim-states files.
  void add_to_model_states(checkpoint::ModelStates& states, const torch::nn::Module& module,
                           const DeepSpeedConfig& config) const override;
  std::optional<c10::impl::GenericDict> optim_states_file(const torch::nn::Module& module,
                                                          const DeepSpeedConfig& config) const override;
  void load_checkpoint(const CheckpointLoad& load) override;
  // Each managed parameter's fp32 master and optimizer state, whole (per-element state flat,
  // scalars such as "step" as they are), indexed like parameters(): for checkpoints that move
  // parameters to ranks of another group (MoE experts under another expert-parallel size).
  struct WholeParameterStates {
    std::vector<torch::Tensor> masters;
    std::vector<std::map<std::string, torch::Tensor>> state;  // empty where a group never stepped
  };
  // Gathered over the group (collective); out-of-scope groups are left out.
  WholeParameterStates whole_parameter_states() const;
  // Cuts this rank's partitions from whole states (the state too where `with_state`) and
  // writes the weights into the model (collective).
  void load_whole_parameter_states(const WholeParameterStates& whole, bool with_state);

  int stage() const { return stage_; }
  int64_t rank() const { return group_->rank(); }
  const BucketPlan& plan() const { return reducer_->plan(); }
  // This rank's fp32 partition of each optimizer group (what the optimizer steps).
  const std::vector<torch::Tensor>& partitions() const { return masters_; }
  // The managed parameters (the optimizer's), in registration order; plan() indexes them.
  const std::vector<torch::Tensor>& parameters() const { return parameters_; }
  // Optimizer group of each managed parameter, and the bucket size the plan was made with:
  // with parameters()' sizes, what rebuilds plan() for any world size (checkpoints).
  const std::vector<int64_t>& parameter_groups() const { return groups_; }
  int64_t bucket_elements() const { return bucket_elements_; }
  // Stage 3: 1 for a persistent parameter, else 0 (plan_buckets' classes); empty below.
  const std::vector<int64_t>& parameter_classes() const { return classes_; }
  // Writes the masters into the model's parameters on every rank (collective).
  void gather_parameters();
  // Replaces this rank's partitions (one flat fp32 tensor per group, as partitions()) and
  // writes them into the model's parameters (collective).
  void load_partitions(const std::vector<torch::Tensor>& partitions);
  // Sets this rank's partitions from the model's parameters (after loading weights; under
  // stage 3 inside gather_all_parameters()).
  void refresh_partitions_from_parameters();
  bool partitions_parameters() const override { return partitioned_ != nullptr; }
  void gather_all_parameters() override;
  void release_all_parameters() override;
  // Stage 3's partitioned parameters; null below stage 3.
  const PartitionedParameters* partitioned_parameters() const { return partitioned_.get(); }

 private:
  void begin_step() override;
  GradientVerdict check_gradients(bool norm_wanted) override;
  torch::Tensor global_squared_norm() override;
  void update(const torch::Tensor& grad_scale) override;
  void write_model_copies() override;
  // The optimizer's inputs for the groups in scope: each group's gradient partition (and,
  // offloaded under stage 3, the shards it writes); after the update, what it leaves behind.
  void step_inputs(std::vector<torch::Tensor>& grads, std::vector<torch::Tensor>& copies) const;
  void after_update();
  bool in_scope(size_t group) const { return scope_.groups.empty() || scope_.groups[group]; }
  bool shards_written_by_optimizer() const;
  // Before the CPU reads the gradient partitions or writes masters_: the copies between the
  // host and the device that nobody waited for are done.
  void wait_for_host_copies();
  // This rank's squared gradient norm over what it counts (model_parallel_.counts), summed
  // over the data-parallel group: the replica's, before the model-parallel sum.
  torch::Tensor partition_squared_norm();
  // fp32, or the model's dtype where no accumulation happens in the partitions (see .cpp).
  torch::ScalarType gradient_partition_dtype(const DeepSpeedConfig& config, torch::ScalarType comm_dtype) const;

  friend class MoeZeroOptimizer;  // steps several ZeroOptimizers as one

  std::vector<torch::Tensor> parameters_;
  std::shared_ptr<comm::ProcessGroup> group_;
  ZeroOptimizerScope scope_;
  std::shared_ptr<Optimizer> optimizer_;
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<PartitionedParameters> partitioned_;  // stage 3
  std::vector<torch::Tensor> masters_;       // per group, flat fp32
  std::unique_ptr<GradientPartitions> gradients_;
  torch::ScalarType grad_partition_dtype_ = torch::kFloat32;
  // Offload: copies of the masters into the device's gather buffers not yet waited for.
  bool host_copies_in_flight_ = false;
  // With model parallelism on a tensor rank > 0: the runs of the gradient partitions that
  // count in the norm, as (group, offset, length); empty when every element counts.
  std::vector<std::array<int64_t, 3>> counted_runs_;
  std::vector<int64_t> groups_;
  std::vector<int64_t> classes_;
  int64_t bucket_elements_ = 0;
  int stage_ = 1;
  // bf16/fp16 model with data_types.grad_accum_dtype fp32: every micro batch is reduced into
  // the fp32 partitions, so that accumulation happens in fp32 (DeepSpeed's BF16_Optimizer).
  bool fp32_accumulation_ = false;
  bool check_overflow_ = false;
  bool fp32_ = false;  // neither fp16 nor bf16: an overflow is a NaN/inf, not a scale problem
  bool offload_ = false;
  torch::ScalarType model_dtype_ = torch::kFloat32;
  torch::Device master_device_ = torch::kCPU;
};

}  // namespace deepspeed
