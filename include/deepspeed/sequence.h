// DeepSpeed-Ulysses sequence parallelism (deepspeed.sequence.layer): each rank of a
// sequence-parallel group holds a slice of every sequence. DistributedAttention wraps any local
// attention: an all-to-all gives each rank the whole sequence for its share of the heads (scatter
// heads, gather sequence), the local attention runs, and the inverse all-to-all gives back the
// rank's sequence slice of every head. Forward: 4 all-to-alls (q, k, v, context); backward the
// same 4 in reverse. The result on every rank is its sequence slice of what the local attention
// gives over the whole sequence.
//
// Data and loss: each sequence-parallel rank reads the same samples as its peers and keeps its
// slice of the sequence (sequence_shard); a loss that is the mean over the rank's own tokens,
// with gradients averaged over the data x sequence group (the engine's), is the mean over all.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <torch/torch.h>

#include <deepspeed/comm.h>

namespace deepspeed::sequence {

// DeepSpeed's single all-to-all with autograd: splits `input` into group.size() parts along
// `scatter_dim`, sends part i to rank i, and concatenates what arrives along `gather_dim` in
// rank order. Backward is the same exchange with the dimensions swapped. Throws EngineError
// when scatter_dim does not divide.
torch::Tensor seq_all_to_all(const torch::Tensor& input, comm::ProcessGroup& group, int64_t scatter_dim,
                             int64_t gather_dim);

// This rank's slice of `whole` along `dim` (the sequence) in `group`: a view, equal parts.
torch::Tensor sequence_shard(const torch::Tensor& whole, int64_t dim, const comm::ProcessGroup& group);

// Attention over [batch, seq, heads, head_dim] (batch_dim_idx 0) or [seq, batch, heads,
// head_dim] (batch_dim_idx 1) query, key and value, returning the context in the same layout.
using LocalAttention = std::function<torch::Tensor(const torch::Tensor& query, const torch::Tensor& key,
                                                   const torch::Tensor& value)>;

class DistributedAttention {
 public:
  // `group`: the engine's groups()->sequence_parallel(); it may be set later with set_group (a
  // model built before initialize makes the groups), but before the first forward.
  // scatter_idx: the heads dimension (DeepSpeed's default 2).
  DistributedAttention(LocalAttention local_attention, std::shared_ptr<comm::ProcessGroup> group,
                       int64_t scatter_idx = 2);
  void set_group(std::shared_ptr<comm::ProcessGroup> group) { group_ = std::move(group); }
  // query/key/value: this rank's sequence slice, every head. The head count must be divisible by
  // the group's size.
  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                        int64_t batch_dim_idx = 0) const;
  torch::Tensor operator()(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                           int64_t batch_dim_idx = 0) const {
    return forward(query, key, value, batch_dim_idx);
  }

 private:
  LocalAttention local_attention_;
  std::shared_ptr<comm::ProcessGroup> group_;
  int64_t scatter_idx_;
};

}  // namespace deepspeed::sequence
