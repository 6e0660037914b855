#include "runtime/zero/partition_resharding.h"

#include <stdexcept>
#include <string>

namespace deepspeed {

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
  auto flat = torch::zeros({plan.group_size[group]}, partitions.empty() ? torch::TensorOptions() : partitions[0].options());
  for (const auto& b : plan.buckets) {
    if (b.group != group) continue;
    for (int64_t r = 0; r < plan.partitions; ++r) {
      flat.narrow(0, b.group_offset + r * b.slice, b.slice)
          .copy_(partitions[r].narrow(0, b.group_offset / plan.partitions, b.slice));
    }
  }
  return flat;
}

torch::Tensor take_partition(const BucketPlan& plan, int64_t group, int64_t rank, const torch::Tensor& flat) {
  auto part = torch::zeros({plan.partition_size(group)}, flat.options());
  const int64_t available = flat.numel();
  for (const auto& b : plan.buckets) {
    if (b.group != group) continue;
    const int64_t from = b.group_offset + rank * b.slice;
    const int64_t n = std::min(b.slice, available - from);
    if (n <= 0) continue;
    part.narrow(0, b.group_offset / plan.partitions, n).copy_(flat.narrow(0, from, n));
  }
  return part;
}

}  // namespace deepspeed
