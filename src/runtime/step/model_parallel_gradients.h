// How the ranks of one model replica (pipeline stages x tensor-parallel ranks) agree on a step:
// each holds different gradients, so the overflow verdict and the gradient norm are only known
// once combined over the model-parallel group. As DeepSpeed's get_global_norm / clip_grad_norm_
// with an mpu: a parameter split across the tensor-parallel group counts on every tensor rank
// (each holds its own part), a replicated one only on tensor rank 0 (it would count once per
// rank otherwise), and the squares are summed over the model-parallel group.
//
// Without model parallelism (a group of one) every method is free: no collective, no filter.
#pragma once

#include <memory>
#include <unordered_set>
#include <vector>

#include <torch/types.h>

#include <deepspeed/comm.h>

namespace deepspeed {

class ModelParallelGradients {
 public:
  ModelParallelGradients() = default;
  // `model`: the model-parallel group (pipe x tensor). `tensor_rank`: this rank in the
  // tensor-parallel group. `split`: the parameters split across the tensor-parallel group.
  ModelParallelGradients(std::shared_ptr<comm::ProcessGroup> model, int64_t tensor_rank,
                         const std::vector<torch::Tensor>& split);
  // `counted_elsewhere`: parameters another rank of the model group counts (tied weights on
  // the stages after the first that holds them); this rank leaves them out of its norm.
  ModelParallelGradients(std::shared_ptr<comm::ProcessGroup> model, int64_t tensor_rank,
                         const std::vector<torch::Tensor>& split, const std::vector<torch::Tensor>& counted_elsewhere);

  // Whether there is anything to agree on (the model group has more than one rank).
  bool active() const { return model_ && model_->size() > 1; }
  // Whether this rank's norm includes the parameter's gradient.
  bool counts(const torch::Tensor& parameter) const {
    const auto* impl = parameter.unsafeGetTensorImpl();
    if (elsewhere_.count(impl)) return false;
    return count_replicated_ || split_.count(impl) > 0;
  }
  // Whether some parameters are left out of this rank's norm (counts() is false for some).
  bool filters() const { return !count_replicated_ || !elsewhere_.empty(); }
  // Sums a (1-element or 0-dim) squared norm over the model group, in place.
  void sum(torch::Tensor& squared_norm) const;
  // True on every rank when `flag` is true on any rank of the model group.
  bool any(bool flag) const;

 private:
  std::shared_ptr<comm::ProcessGroup> model_;
  bool count_replicated_ = true;
  std::unordered_set<const void*> split_;
  std::unordered_set<const void*> elsewhere_;
};

}  // namespace deepspeed
