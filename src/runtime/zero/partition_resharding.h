// Moving ZeRO partitions between world sizes. Whatever N and bucket size a run used, a
// group's flat space (its parameters, last first) is the same sequence of elements; only the
// zero padding at its end and the way it is sliced among ranks differ (BucketPlan). So a
// checkpoint saved on N ranks loads on M ranks by reassembling each group's flat space from
// the N saved partitions and slicing it again for M.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "comm/bucket_plan.h"

namespace deepspeed {

// Group `group`'s flat space (plan.group_size elements) from every rank's partition of it,
// in rank order. Throws std::invalid_argument if a partition has the wrong size.
torch::Tensor assemble_group(const BucketPlan& plan, int64_t group, const std::vector<torch::Tensor>& partitions);

// Rank `rank`'s partition of a group's flat space under `plan`. `flat` may be longer or
// shorter than the plan's group size (another padding): elements beyond it read as zero.
torch::Tensor take_partition(const BucketPlan& plan, int64_t group, int64_t rank, const torch::Tensor& flat);

}  // namespace deepspeed
