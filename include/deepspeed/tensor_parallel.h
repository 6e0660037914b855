// Tensor parallelism (Megatron's layers, DeepSpeed's AutoTP training): one layer's weights split
// across the ranks of a tensor-parallel group, with the all-reduces Megatron places around them.
//
//   column-parallel   Y_r = X W_r^T: W's rows (the output features) split; forward needs no
//                     communication, backward sums dX over the group (copy_to region)
//   row-parallel      Y = sum_r X_r W_r^T: W's columns (the input features) split; forward sums
//                     the partial outputs over the group, then adds the (replicated) bias
//
// A column-parallel layer followed by a row-parallel one (attention's q/k/v then out, an MLP's
// up then down) costs one all-reduce forward and one backward, and gives every rank the same
// output as the unsplit pair. Every rank of the group must run the same layers in the same order
// (they are collectives); the group must outlive the autograd graphs the layers build.
//
// For C++ users who write their model for it: ColumnParallelLinear, RowParallelLinear,
// VocabParallelEmbedding, vocab_parallel_cross_entropy. For plain models, AutoTP: the config's
// "tensor_parallel" section makes initialize() split the model's tensor_parallel::Linear layers
// by their names (docs/tensor_parallel.md says why a LibTorch torch::nn::Linear cannot be split
// behind its back).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <deepspeed/comm.h>
#include <deepspeed/config.h>

namespace deepspeed::tensor_parallel {

// Megatron's mappings, autograd functions over `group` (a group of one is the identity).
// copy_to: identity forward, all-reduce (sum) of the gradient backward.
torch::Tensor copy_to_tensor_model_parallel_region(const torch::Tensor& input, comm::ProcessGroup& group);
// reduce_from: all-reduce (sum) forward, identity backward.
torch::Tensor reduce_from_tensor_model_parallel_region(const torch::Tensor& input, comm::ProcessGroup& group);
// gather_from: all-gather along the last dimension forward, this rank's slice of the gradient backward.
torch::Tensor gather_from_tensor_model_parallel_region(const torch::Tensor& input, comm::ProcessGroup& group);
// scatter_to: this rank's slice of the last dimension forward, all-gather of the gradient backward.
torch::Tensor scatter_to_tensor_model_parallel_region(const torch::Tensor& input, comm::ProcessGroup& group);

// Part `index` of `parts` equal parts of `whole` along `dim` (a copy). Throws EngineError naming
// `what` when the dimension does not divide.
torch::Tensor shard(const torch::Tensor& whole, int64_t dim, int64_t parts, int64_t index, const std::string& what);

// How one parameter is split over the tensor-parallel group: along `dim`, each of the fused
// sub-parameters `sub_sizes` (their whole sizes along `dim`; empty: the dimension is one) on its
// own, so part r is [sub_0's r-th piece, sub_1's r-th piece, ...]. Column-parallel weights and
// biases split dim 0, row-parallel weights dim 1, vocabulary-parallel tables dim 0 (their rows).
// The same rule cuts a parameter for any number of parts: what lets a checkpoint saved on one
// tensor-parallel degree load on another.
struct SplitParameter {
  std::string name;  // as the model's named_parameters() calls it
  int64_t dim = 0;
  std::vector<int64_t> sub_sizes;
};

// Part `index` of `parts` of `whole` as `split` cuts it (a copy). Throws EngineError naming
// `what` (default: the parameter) when a size does not divide.
torch::Tensor shard(const torch::Tensor& whole, const SplitParameter& split, int64_t parts, int64_t index,
                    const std::string& what = {});
// The whole parameter from all its parts, in rank order (shard's inverse). Throws EngineError
// naming the parameter when the parts do not fit together.
torch::Tensor unshard(const std::vector<torch::Tensor>& parts, const SplitParameter& split);

// The split parameters of `model`: those of its ColumnParallelLinear, RowParallelLinear and
// VocabParallelEmbedding layers and of the Linear layers AutoTP split, in module order.
std::vector<SplitParameter> split_parameters(const torch::nn::Module& model);

// Megatron's ColumnParallelLinear: weight [out/tp, in], bias [out/tp] (this rank's rows).
// gather_output: the output is all-gathered to [.., out] on every rank; otherwise [.., out/tp].
class ColumnParallelLinearImpl : public torch::nn::Module {
 public:
  ColumnParallelLinearImpl(int64_t in_features, int64_t out_features, std::shared_ptr<comm::ProcessGroup> group,
                           bool bias = true, bool gather_output = false);
  torch::Tensor forward(const torch::Tensor& input);
  // Takes this rank's rows of the unsplit layer's weight [out, in] and bias [out].
  void load_unsplit(const torch::Tensor& weight, const torch::Tensor& bias = {});
  torch::Tensor weight, bias;

 private:
  std::shared_ptr<comm::ProcessGroup> group_;
  bool gather_output_;
};
TORCH_MODULE(ColumnParallelLinear);

// Megatron's RowParallelLinear: weight [out, in/tp] (this rank's columns), bias [out]
// (replicated, added once after the all-reduce). input_is_parallel: the input is already this
// rank's slice of the features (a column-parallel layer's output); otherwise it is split here.
class RowParallelLinearImpl : public torch::nn::Module {
 public:
  RowParallelLinearImpl(int64_t in_features, int64_t out_features, std::shared_ptr<comm::ProcessGroup> group,
                        bool bias = true, bool input_is_parallel = true);
  torch::Tensor forward(const torch::Tensor& input);
  void load_unsplit(const torch::Tensor& weight, const torch::Tensor& bias = {});
  torch::Tensor weight, bias;

 private:
  std::shared_ptr<comm::ProcessGroup> group_;
  bool input_is_parallel_;
};
TORCH_MODULE(RowParallelLinear);

// Megatron's VocabParallelEmbedding: this rank holds rows [rank*V/tp, (rank+1)*V/tp) of the
// table; tokens outside its range look up zeros, and the lookups are summed over the group.
class VocabParallelEmbeddingImpl : public torch::nn::Module {
 public:
  VocabParallelEmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim, std::shared_ptr<comm::ProcessGroup> group);
  torch::Tensor forward(const torch::Tensor& tokens);
  void load_unsplit(const torch::Tensor& weight);
  int64_t vocab_start() const { return vocab_start_; }
  int64_t vocab_end() const { return vocab_end_; }
  torch::Tensor weight;

 private:
  std::shared_ptr<comm::ProcessGroup> group_;
  int64_t vocab_start_, vocab_end_;
};
TORCH_MODULE(VocabParallelEmbedding);

// Megatron's vocab_parallel_cross_entropy: `logits` [.., V/tp] are this rank's vocabulary slice
// (a column-parallel output layer without gather_output), `target` [..] the token ids over the
// whole vocabulary. Returns the per-token loss [..], the same on every rank, equal to
// cross_entropy over the gathered logits, without ever gathering them (a max, a sum of
// exponentials and the target's logit are all-reduced).
torch::Tensor vocab_parallel_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target,
                                           comm::ProcessGroup& group);

// How AutoTP may split a Linear (DeepSpeed's PartitionType).
enum class Partition { Replicated, Column, Row };

// A drop-in torch::nn::Linear (same options, parameters "weight" and "bias", same results) that
// AutoTP can split: until initialize() gives it a role it is an ordinary linear layer. A
// torch::nn::Linear cannot be split by AutoTP because LibTorch has no forward hooks: its
// forward cannot be made to run the all-reduces.
class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& input);
  // Splits this layer's weight (and bias, for column) for `group`'s rank: rows for Column,
  // columns for Row. `sub_sizes`: the fused sub-parameters along the split dimension (each split
  // on its own; empty: the whole dimension is one). Throws EngineError naming `name` when a size
  // does not divide.
  void partition(Partition how, std::shared_ptr<comm::ProcessGroup> group, const std::string& name,
                 const std::vector<int64_t>& sub_sizes = {}, bool gather_output = false);
  Partition partitioning() const { return partition_; }
  // The fused sub-parameters' whole sizes along the split dimension (empty: one).
  const std::vector<int64_t>& sub_sizes() const { return sub_sizes_; }

 private:
  Partition partition_ = Partition::Replicated;
  std::vector<int64_t> sub_sizes_;
  std::shared_ptr<comm::ProcessGroup> group_;
  bool gather_output_ = false;
};
TORCH_MODULE(Linear);

// What AutoTP did to a model.
struct AutoTpResult {
  std::vector<std::string> column, row, replicated;  // the linear layers, by module name
  // The parameters that are now split (the engine's tensor_parallel_parameters).
  std::vector<torch::Tensor> split_parameters;
  // Replicated parameters whose gradient is summed over the group (grad_allreduce specs).
  std::vector<torch::Tensor> summed_gradient_parameters;
};

// The layer specs AutoTP applies for `config`: the user's partition_config (then, with
// use_default_specs, the preset's), or the preset's, or, without either, DeepSpeed's name lists
// as specs (row: o_proj, down_proj, out_proj, c_proj, fc2, ...; column: q/k/v_proj, up/gate_proj,
// c_attn as fused q/k/v, ...; lm_head, embed_out and MoE gates replicated). A layer no spec
// matches stays replicated. docs/tensor_parallel.md lists them.
std::vector<TpLayerSpec> autotp_layer_specs(const TensorParallelConfig& config);

// How AutoTP's specs for `config` split the linear layer whose weight (`param_name`, [out, in])
// is given, for inference, which splits weights it holds itself rather than
// tensor_parallel::Linear layers: Replicated when no spec splits it.
struct LayerSplit {
  Partition how = Partition::Replicated;
  std::vector<int64_t> sub_sizes;  // fused sub-parameters along the split dimension; empty: one
};
LayerSplit autotp_split(const std::string& param_name, const torch::Tensor& weight, const TensorParallelConfig& config);
// Part `index` of `parts` of `whole` along `dim`, each sub-parameter of `sub_sizes` split on its
// own (empty: the whole dimension is one). Throws EngineError naming `what` when a size does not divide.
torch::Tensor shard_sub_params(const torch::Tensor& whole, int64_t dim, const std::vector<int64_t>& sub_sizes,
                               int64_t parts, int64_t index, const std::string& what);

// DeepSpeed's AutoTP for training: splits `model`'s linear layers over `group` by their names
// (module path + ".weight" matched against the specs). A torch::nn::Linear the specs select is
// an error naming it (it cannot run the collectives); so is a size that does not divide, and,
// in strict_mode, a linear layer no spec matches. Every rank of the group calls it on the same
// model. Registers the gradient all-reduce of grad_allreduce parameters.
AutoTpResult apply_autotp(torch::nn::Module& model, const TensorParallelConfig& config,
                          std::shared_ptr<comm::ProcessGroup> group);

}  // namespace deepspeed::tensor_parallel
