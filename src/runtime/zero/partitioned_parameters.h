// ZeRO stage 3's parameters: each rank keeps only its shard of every parameter (in the model's
// dtype), and a parameter's full tensor exists only while something needs it.
//
// The shards follow the gradient buckets' layout (comm/bucket_plan.h): rank r owns slice r
// of every bucket, exactly the fp32 partition ZeroOptimizer steps, so the fp32 masters are
// the shards (cast to the model's dtype as they enter a gather's buffer); only where the
// parameters are offloaded and the masters are not does a model-dtype copy live there. A
// bucket is also the unit of gathering: its shards are all-gathered into one buffer and
// copied into its parameters.
//
// A released parameter keeps its tensor (shape, dtype, autograd identity, the views autograd
// saved of it) but its storage holds no memory; gathering allocates the storage again and
// fills it. ParameterUseObserver reports every operation that is about to read a
// parameter; use() gathers what is missing first, and the FetchSchedule decides what to
// prefetch and what to release. Buckets holding a persistent (small) parameter stay gathered.
//
// Collective: every rank must make the same calls in the same order, which holds because
// every rank runs the same operations and decisions depend on sizes and the trace only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <deepspeed/comm.h>
#include <deepspeed/config.h>

#include "partitioning/bucket_plan.h"
#include "runtime/zero/fetch_schedule.h"
#include "runtime/zero/quantized_gather.h"
#include "runtime/zero/secondary_partition.h"

namespace deepspeed {

class NvmeShardStore;
class ParameterUseObserver;

// ZeRO-3 at initialize, before PartitionedParameters exists: the parameters arrive whole,
// wherever the model was built (the CPU, for a model larger than one GPU). One at a time each
// moves to the group's device in `dtype`, takes rank 0's values (broadcast), gives this
// rank's slices of the plan to `masters` (flat fp32 per group, zero-filled beforehand), and
// gives its memory back unless it is in a bucket that stays gathered (one holding a
// `persistent` parameter; ZeroOptimizer's plan gives those buckets of their own). So the
// whole model never has to fit on the device (DeepSpeed's zero.Init does this during
// construction instead).
void partition_whole_parameters(const std::vector<torch::Tensor>& parameters, const BucketPlan& plan,
                                const std::vector<bool>& persistent, comm::ProcessGroup& group,
                                torch::ScalarType dtype, const std::vector<torch::Tensor>& masters);

class PartitionedParameters {
 public:
  struct Options {
    FetchSchedule::Limits limits;
    torch::ScalarType dtype = torch::kFloat32;  // the model's
    torch::Device shard_device = torch::kCPU;   // the CPU with offload_param, else the group's device
    bool pin_shards = false;
    // offload_param {device: nvme}: the shards live in files under this folder.
    std::optional<std::string> nvme_path;
    AioConfig aio;
    // ZeRO++: gathers move int8 and scales (qwZ, quantized_gather.h); with a secondary group
    // (hpZ, secondary_partition.h) backward gathers come from the secondary shards inside it.
    bool quantize_weights = false;
    std::shared_ptr<comm::ProcessGroup> secondary_group;
  };
  // `parameters` in the plan's indexing, as partition_whole_parameters left them (or whole and
  // equal on every rank); `persistent[i]`: keep parameter i whole. `masters`: this rank's fp32 partition of each group (the shards' values).
  PartitionedParameters(std::vector<torch::Tensor> parameters, const BucketPlan& plan, const std::vector<bool>& persistent,
                        std::shared_ptr<comm::ProcessGroup> group, Options options,
                        const std::vector<torch::Tensor>& masters);
  ~PartitionedParameters();
  PartitionedParameters(const PartitionedParameters&) = delete;
  PartitionedParameters& operator=(const PartitionedParameters&) = delete;

  void begin_forward();
  // Without a backward to follow (evaluation), every non-persistent bucket is released.
  void end_forward(bool backward_follows);
  void begin_backward();
  void end_backward();

  // One operation is about to read these parameters: gathers whatever part of them is not
  // here, releasing (per the schedule) only buckets none of them needs.
  void use(const std::vector<int64_t>& parameters);
  // Every parameter whole (checkpoints, loading weights), until release_all().
  void gather_all();
  void release_all();
  // New shard values from the fp32 partitions; gathered parameters are refreshed.
  // `shards_written`: the optimizer already wrote them (as step_copies()).
  void set_shards(const std::vector<torch::Tensor>& masters, bool shards_written = false);
  // The shards where an optimizer step can write them in its own pass as 16-bit copies of the
  // masters (offloaded shards beside offloaded masters: saves a pass over host memory); else
  // empty.
  std::vector<torch::Tensor> step_copies() const;

  // Bytes of parameter data this rank holds now: the gathered parameters' storages, plus the
  // shards unless they are the fp32 masters themselves; and the most it held since the
  // last begin_forward() (during the last forward and backward).
  int64_t held_bytes() const { return gathered_bytes_ + shard_bytes() + secondary_bytes(); }
  int64_t peak_held_bytes() const { return peak_gathered_bytes_ + shard_bytes(); }
  bool shards_are_masters() const { return shards_are_masters_; }
  // Bucket gathers so far (prefetches included), and buckets gathered now.
  int64_t gathers() const { return gathers_; }
  // Of those, gathers from the hpZ secondary shards (inside the secondary group).
  int64_t secondary_gathers() const { return secondary_gathers_; }
  int64_t live_buckets() const;
  bool is_persistent_bucket(int64_t bucket) const { return persistent_bucket_[bucket]; }

 private:
  struct Pending {
    std::unique_ptr<ShardGather> gather;
    bool secondary = false;  // over the hpZ group
  };
  enum class Phase { None, Forward, Backward };
  void start_gather(int64_t bucket);
  void finish_gather(int64_t bucket);
  void release(int64_t bucket);
  void finish_all_pending();
  torch::Tensor shard_of(int64_t bucket) const;
  std::vector<bool> live_or_pending() const;
  int64_t shard_bytes() const;
  int64_t secondary_bytes() const { return secondary_ ? secondary_->bytes() : 0; }

  std::vector<torch::Tensor> parameters_;
  BucketPlan plan_;
  std::shared_ptr<comm::ProcessGroup> group_;
  Options options_;
  torch::ScalarType gather_dtype_;
  std::vector<torch::Tensor> shards_;           // per group, partition_size(g): the masters, or a copy
  std::unique_ptr<NvmeShardStore> nvme_;        // or the shards are on NVMe
  bool shards_are_masters_ = false;
  std::vector<bool> persistent_bucket_;
  std::vector<bool> live_;                      // per bucket: delivered into its parameters
  std::vector<std::optional<Pending>> pending_; // per bucket: gather in flight
  std::vector<int64_t> delivered_;              // per parameter: live buckets holding part of it
  FetchSchedule schedule_;
  std::unique_ptr<ParameterUseObserver> observer_;
  std::unique_ptr<SecondaryPartition> secondary_;  // hpZ
  Phase phase_ = Phase::None;
  int64_t gathers_ = 0;
  int64_t secondary_gathers_ = 0;
  int64_t gathered_bytes_ = 0;
  int64_t peak_gathered_bytes_ = 0;
};

}  // namespace deepspeed
