// ZeRO++'s hierarchical partitioning (hpZ, zero_hpz_partition_size = h > 1): after a bucket's
// forward gather, each rank keeps a second shard of it, 1/h of the bucket, partitioned over
// its group of h consecutive ranks (a node); the backward pass then gathers the bucket from
// those shards, inside the group of h only, instead of from the primary shards across all
// ranks. The secondary shards hold the gathered values in the gather dtype (DeepSpeed keeps
// its ds_secondary_tensor in the compute dtype), so the backward gather delivers exactly what
// the forward one did; with qwZ that gather is quantized too, as DeepSpeed's is. They are
// freed after backward (and after a forward that no backward follows).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <torch/types.h>

#include <deepspeed/comm.h>

namespace deepspeed {

class SecondaryPartition {
 public:
  // `group`: this rank's group of h ranks; `buckets`: the number of buckets of the plan.
  SecondaryPartition(std::shared_ptr<comm::ProcessGroup> group, int64_t buckets);

  // Keeps this rank's 1/h of a gathered bucket (its size must be a multiple of h).
  void keep(int64_t bucket, const torch::Tensor& gathered);
  bool has(int64_t bucket) const { return shards_[static_cast<std::size_t>(bucket)].has_value(); }
  const torch::Tensor& shard(int64_t bucket) const { return *shards_[static_cast<std::size_t>(bucket)]; }
  void release_all();

  comm::ProcessGroup& group() const { return *group_; }
  int64_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<comm::ProcessGroup> group_;
  std::vector<std::optional<torch::Tensor>> shards_;
  int64_t bytes_ = 0;
};

// The groups of h consecutive ranks of `group` (DeepSpeed's _create_zero_param_parallel_group):
// this rank's one. h must divide group.size() (checked by the caller).
std::shared_ptr<comm::ProcessGroup> secondary_partition_group(const comm::ProcessGroup& group, int64_t h);

}  // namespace deepspeed
