#include "runtime/step/model_parallel_gradients.h"

namespace deepspeed {

ModelParallelGradients::ModelParallelGradients(std::shared_ptr<comm::ProcessGroup> model, int64_t tensor_rank,
                                               const std::vector<torch::Tensor>& split)
    : model_(std::move(model)), count_replicated_(tensor_rank == 0) {
  for (const auto& p : split) split_.insert(p.unsafeGetTensorImpl());
}

ModelParallelGradients::ModelParallelGradients(std::shared_ptr<comm::ProcessGroup> model, int64_t tensor_rank,
                                               const std::vector<torch::Tensor>& split,
                                               const std::vector<torch::Tensor>& counted_elsewhere)
    : ModelParallelGradients(std::move(model), tensor_rank, split) {
  for (const auto& p : counted_elsewhere) elsewhere_.insert(p.unsafeGetTensorImpl());
}

void ModelParallelGradients::sum(torch::Tensor& squared_norm) const {
  if (!active()) return;
  // Gloo and NCCL reduce float64; a 0-dim tensor travels as one element.
  auto t = squared_norm.reshape({1}).to(model_->device(), torch::kFloat64);
  model_->all_reduce(t);
  squared_norm = t.reshape(squared_norm.sizes()).to(squared_norm.device(), squared_norm.scalar_type());
}

bool ModelParallelGradients::any(bool flag) const {
  if (!active()) return flag;
  auto t = torch::tensor({flag ? 1.0f : 0.0f}, torch::TensorOptions().dtype(torch::kFloat32).device(model_->device()));
  model_->all_reduce(t, comm::ReduceOp::Max);
  return t.item<float>() > 0.0f;
}

}  // namespace deepspeed
