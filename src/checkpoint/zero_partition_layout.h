// ZeRO's partition layout as each optimizer-state file records it (`ds_cpp_layout`): the
// parameters' sizes, groups and names, the bucket size and (ZeRO-3) the bucket classes. It
// is what rebuilds the bucket plan a saving run used, for any world size, so that its
// partitions can be reassembled (ds_to_fp32) or resharded (a load on another world size).
// One reader and one writer of the format, for both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>

#include "partitioning/bucket_plan.h"

namespace deepspeed::checkpoint {

struct ZeroPartitionLayout {
  std::vector<int64_t> numels;      // per parameter, in the wrapper's order
  std::vector<int64_t> groups;      // each parameter's optimizer group
  std::vector<std::string> names;   // each parameter's name in the module (empty in older files)
  int64_t bucket_elements = 0;
  std::vector<int64_t> classes;     // plan_buckets' classes; empty where the plan had none

  BucketPlan plan(int64_t partitions) const {
    return plan_buckets(numels, groups, bucket_elements, partitions, classes);
  }
};

// The dict stored as `ds_cpp_layout` (`classes` only when it has any: older readers ignore it).
c10::impl::GenericDict to_ivalue(const ZeroPartitionLayout& layout);

// The layout from an optimizer_state_dict read from `file`; CheckpointError naming the file
// and entry when it is missing or inconsistent. A layout without `bucket_classes` (saved
// before plans had classes) has no classes; one without `names` (older still) no names.
ZeroPartitionLayout read_zero_partition_layout(const c10::impl::GenericDict& optimizer_state_dict,
                                               const std::string& file);

}  // namespace deepspeed::checkpoint
