// Megatron's ColumnParallelLinear, RowParallelLinear and VocabParallelEmbedding. Each draws the
// unsplit layer's initial weights as LibTorch does (same shapes, kaiming-uniform for the linear
// layers, normal for the embedding) and keeps its part; load_unsplit() gives them the weights
// of a given unsplit layer (tests, conversions).
#include <cmath>

#include <deepspeed/errors.h>
#include <deepspeed/tensor_parallel.h>

namespace deepspeed::tensor_parallel {
namespace {

int64_t divided(int64_t size, const comm::ProcessGroup& group, const char* layer, const char* what) {
  if (size % group.size() != 0) {
    throw EngineError(std::string(layer) + ": " + what + " " + std::to_string(size) +
                      " is not divisible by the tensor-parallel size " + std::to_string(group.size()));
  }
  return size / group.size();
}

// torch::nn::Linear's initial weight and bias for the unsplit layer.
std::pair<torch::Tensor, torch::Tensor> unsplit_linear(int64_t in, int64_t out) {
  torch::nn::Linear whole(torch::nn::LinearOptions(in, out));
  return {whole->weight.detach(), whole->bias.detach()};
}

}  // namespace

ColumnParallelLinearImpl::ColumnParallelLinearImpl(int64_t in_features, int64_t out_features,
                                                   std::shared_ptr<comm::ProcessGroup> group, bool with_bias,
                                                   bool gather_output)
    : group_(std::move(group)), gather_output_(gather_output) {
  const int64_t part = divided(out_features, *group_, "ColumnParallelLinear", "out_features");
  weight = register_parameter("weight", torch::empty({part, in_features}));
  if (with_bias) bias = register_parameter("bias", torch::empty({part}));
  auto [w, b] = unsplit_linear(in_features, out_features);
  load_unsplit(w, with_bias ? b : torch::Tensor());
}

void ColumnParallelLinearImpl::load_unsplit(const torch::Tensor& w, const torch::Tensor& b) {
  torch::NoGradGuard no_grad;
  weight.copy_(shard(w, 0, group_->size(), group_->rank(), "ColumnParallelLinear weight"));
  if (bias.defined() && b.defined()) bias.copy_(shard(b, 0, group_->size(), group_->rank(), "ColumnParallelLinear bias"));
}

torch::Tensor ColumnParallelLinearImpl::forward(const torch::Tensor& input) {
  auto out = torch::linear(copy_to_tensor_model_parallel_region(input, *group_), weight, bias);
  return gather_output_ ? gather_from_tensor_model_parallel_region(out, *group_) : out;
}

RowParallelLinearImpl::RowParallelLinearImpl(int64_t in_features, int64_t out_features,
                                             std::shared_ptr<comm::ProcessGroup> group, bool with_bias,
                                             bool input_is_parallel)
    : group_(std::move(group)), input_is_parallel_(input_is_parallel) {
  const int64_t part = divided(in_features, *group_, "RowParallelLinear", "in_features");
  weight = register_parameter("weight", torch::empty({out_features, part}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out_features}));
  auto [w, b] = unsplit_linear(in_features, out_features);
  load_unsplit(w, with_bias ? b : torch::Tensor());
}

void RowParallelLinearImpl::load_unsplit(const torch::Tensor& w, const torch::Tensor& b) {
  torch::NoGradGuard no_grad;
  weight.copy_(shard(w, 1, group_->size(), group_->rank(), "RowParallelLinear weight"));
  if (bias.defined() && b.defined()) bias.copy_(b);
}

torch::Tensor RowParallelLinearImpl::forward(const torch::Tensor& input) {
  const auto x = input_is_parallel_ ? input : scatter_to_tensor_model_parallel_region(input, *group_);
  auto out = reduce_from_tensor_model_parallel_region(torch::linear(x, weight), *group_);
  return bias.defined() ? out + bias : out;
}

VocabParallelEmbeddingImpl::VocabParallelEmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim,
                                                       std::shared_ptr<comm::ProcessGroup> group)
    : group_(std::move(group)) {
  const int64_t part = divided(num_embeddings, *group_, "VocabParallelEmbedding", "num_embeddings");
  vocab_start_ = group_->rank() * part;
  vocab_end_ = vocab_start_ + part;
  weight = register_parameter("weight", torch::empty({part, embedding_dim}));
  load_unsplit(torch::randn({num_embeddings, embedding_dim}));
}

void VocabParallelEmbeddingImpl::load_unsplit(const torch::Tensor& w) {
  torch::NoGradGuard no_grad;
  weight.copy_(shard(w, 0, group_->size(), group_->rank(), "VocabParallelEmbedding weight"));
}

torch::Tensor VocabParallelEmbeddingImpl::forward(const torch::Tensor& tokens) {
  if (group_->size() == 1) return torch::embedding(weight, tokens);
  const auto outside = (tokens < vocab_start_) | (tokens >= vocab_end_);
  const auto local = (tokens - vocab_start_).masked_fill(outside, 0);
  auto rows = torch::embedding(weight, local).masked_fill(outside.unsqueeze(-1), 0.0);
  return reduce_from_tensor_model_parallel_region(rows, *group_);
}

}  // namespace deepspeed::tensor_parallel
