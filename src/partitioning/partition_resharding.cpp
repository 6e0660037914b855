#include "partitioning/partition_resharding.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace deepspeed {
namespace {

// Calls fn(rank, position in the rank's partition, position in the group's dense sequence,
// length) for every run of parameter elements of `group` that a rank owns under `plan`. The
// dense sequence is the group's parameters, last first, without padding: a bucket's entries
// list them in that order, and buckets of a group come in the order they were filled.
template <typename Fn>
void for_each_run(const BucketPlan& plan, int64_t group, Fn&& fn) {
  const std::vector<int64_t> start = dense_offsets(plan, group);
  for (int64_t i = 0; i < static_cast<int64_t>(plan.buckets.size()); ++i) {
    if (plan.buckets[static_cast<std::size_t>(i)].group != group) continue;
    for (int64_t r = 0; r < plan.partitions; ++r) {
      for_each_owned_run(plan, i, r, [&](const OwnedRun& run) {
        fn(r, run.partition_offset, start[run.param] + run.param_offset, run.length);
      });
    }
  }
}

}  // namespace

int64_t dense_group_size(const BucketPlan& plan, int64_t group) {
  int64_t n = 0;
  for (const auto& b : plan.buckets) {
    if (b.group != group) continue;
    for (const auto& e : b.entries) n += e.length;
  }
  return n;
}

std::vector<int64_t> dense_offsets(const BucketPlan& plan, int64_t group) {
  std::vector<int64_t> start(plan.buckets_of.size(), -1);
  int64_t dense = 0;
  for (const auto& b : plan.buckets) {
    if (b.group != group) continue;
    for (const auto& e : b.entries) {
      if (e.param_offset == 0) start[e.param] = dense;
      dense += e.length;
    }
  }
  return start;
}

torch::Tensor assemble_group(const BucketPlan& plan, int64_t group, const std::vector<torch::Tensor>& partitions) {
  if (static_cast<int64_t>(partitions.size()) != plan.partitions) {
    throw std::invalid_argument("assemble_group: expected " + std::to_string(plan.partitions) + " partitions, got " +
                                std::to_string(partitions.size()));
  }
  const int64_t expected = plan.partition_size(group);
  for (const auto& p : partitions) {
    if (p.dim() != 1 || p.numel() != expected) {
      throw std::invalid_argument("assemble_group: a partition of group " + std::to_string(group) + " has " +
                                  std::to_string(p.numel()) + " elements, expected " + std::to_string(expected));
    }
  }
  auto dense = torch::zeros({dense_group_size(plan, group)},
                            partitions.empty() ? torch::TensorOptions() : partitions[0].options());
  for_each_run(plan, group, [&](int64_t rank, int64_t at, int64_t to, int64_t n) {
    dense.narrow(0, to, n).copy_(partitions[rank].narrow(0, at, n));
  });
  return dense;
}

torch::Tensor take_partition(const BucketPlan& plan, int64_t group, int64_t rank, const torch::Tensor& dense) {
  auto part = torch::zeros({plan.partition_size(group)}, dense.options());
  const int64_t available = dense.numel();
  for_each_run(plan, group, [&](int64_t r, int64_t at, int64_t from, int64_t n) {
    if (r != rank) return;
    n = std::min(n, available - from);
    if (n > 0) part.narrow(0, at, n).copy_(dense.narrow(0, from, n));
  });
  return part;
}

}  // namespace deepspeed
