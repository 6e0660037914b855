// This rank's partition of every optimizer group's gradients under ZeRO 1-3: where the
// reduce-scattered bucket slices land, where micro batches accumulate, and what the optimizer
// steps with (one flat tensor per group, laid out as the BucketPlan's partitions).
//
// A step's first slice of a bucket is written and later ones added, so the partitions are
// never zeroed in a pass of their own (at 20B parameters offloaded that pass is 81 GB of host
// memory); complete() zeros only the buckets no slice reached. On the device the memory is
// given back at clear() and taken again at the next step's first slice, so it is not held
// through forward, where activations peak. Offloaded (pinned host) partitions stay, and take
// slices from the GPU without waiting: complete() waits for those copies.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "partitioning/bucket_plan.h"

namespace deepspeed {

class GradientPartitions {
 public:
  struct Options {
    torch::Device device = torch::kCPU;      // where the partitions live
    torch::ScalarType dtype = torch::kFloat32;
    bool pinned = false;                     // page-locked host memory (offload to a GPU's host)
    bool release_between_steps = false;      // give the memory back at clear()
    // Offloaded: keep the squared norm of each step's slices on the GPU as they arrive, so the
    // step need not read the host partitions again for the norm (only when no bucket
    // accumulates more than one slice).
    bool track_slice_norms = false;
  };
  // `plan` must outlive this (it is the reducer's). `groups`: the optimizer's group count (a
  // group the plan has no parameters of gets an empty partition).
  GradientPartitions(const BucketPlan& plan, int64_t groups, Options options);
  // Waits for copies still in flight into the partitions it frees.
  ~GradientPartitions();
  GradientPartitions(const GradientPartitions&) = delete;
  GradientPartitions& operator=(const GradientPartitions&) = delete;

  // The reduced slice of `bucket` this rank owns.
  void accumulate(int64_t bucket, const torch::Tensor& slice);
  // Before anyone reads the partitions: copies in flight are done, unreached buckets are zero.
  void complete();
  // Starts the next accumulation (contents now undefined; the device memory is given back).
  void clear();

  // Per optimizer group, flat.
  const std::vector<torch::Tensor>& tensors() const { return partitions_; }
  // The squared norm of this step's slices (float64, on the GPU) when tracking made it equal
  // to the partitions' own; undefined otherwise.
  torch::Tensor slice_squared_norm() const;
  // Copies into pinned partitions not yet waited for, and waiting for them.
  bool copies_in_flight() const { return copies_in_flight_; }
  void copies_done() { copies_in_flight_ = false; }
  int64_t bytes_held() const;

 private:
  torch::Tensor place_of(int64_t bucket);

  const BucketPlan& plan_;
  Options options_;
  std::vector<torch::Tensor> partitions_;
  std::vector<char> written_;       // per bucket: a slice arrived since clear()
  torch::Tensor staging_;           // pinned fp32, a slice on its way from the GPU
  torch::Tensor slice_norms_;       // sum of this step's slices' squares
  bool slice_norms_valid_ = false;
  bool copies_in_flight_ = false;
  torch::Device copy_source_ = torch::kCPU;  // the GPU the in-flight copies come from
};

}  // namespace deepspeed
