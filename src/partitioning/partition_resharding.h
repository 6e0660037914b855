// Moving ZeRO partitions between world sizes. Whatever N and bucket size a run used, a
// group's dense sequence (its parameters, last first, without padding) is the same; only the
// padding (at the end of a bucket, per BucketPlan) and the way it is sliced among ranks differ.
// So a checkpoint saved on N ranks loads on M ranks by reassembling each group's dense
// sequence from the N saved partitions and slicing it again for M.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "partitioning/bucket_plan.h"

namespace deepspeed {

// Elements of group `group`'s parameters (its dense sequence's length).
int64_t dense_group_size(const BucketPlan& plan, int64_t group);

// Where each parameter starts in group `group`'s dense sequence (indexed like the plan's
// parameters; -1 for parameters of other groups).
std::vector<int64_t> dense_offsets(const BucketPlan& plan, int64_t group);

// Group `group`'s dense sequence from every rank's partition of it, in rank order. Throws
// std::invalid_argument if a partition has the wrong size.
torch::Tensor assemble_group(const BucketPlan& plan, int64_t group, const std::vector<torch::Tensor>& partitions);

// Rank `rank`'s partition (padding zero) of a group's dense sequence under `plan`; elements
// beyond the end of `dense` read as zero.
torch::Tensor take_partition(const BucketPlan& plan, int64_t group, int64_t rank, const torch::Tensor& dense);

}  // namespace deepspeed
