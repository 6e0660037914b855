#include "runtime/zero/secondary_partition.h"

namespace deepspeed {

SecondaryPartition::SecondaryPartition(std::shared_ptr<comm::ProcessGroup> group, int64_t buckets)
    : group_(std::move(group)), shards_(static_cast<std::size_t>(buckets)) {}

void SecondaryPartition::keep(int64_t bucket, const torch::Tensor& gathered) {
  auto& slot = shards_[static_cast<std::size_t>(bucket)];
  if (slot) return;
  const int64_t size = gathered.numel() / group_->size();
  slot = gathered.narrow(0, group_->rank() * size, size).clone();
  bytes_ += size * static_cast<int64_t>(gathered.element_size());
}

void SecondaryPartition::release_all() {
  for (auto& s : shards_) s.reset();
  bytes_ = 0;
}

std::shared_ptr<comm::ProcessGroup> secondary_partition_group(const comm::ProcessGroup& group, int64_t h) {
  const int64_t first = group.rank() / h * h;
  std::vector<int64_t> members;
  for (int64_t r = first; r < first + h; ++r) members.push_back(r);
  return group.new_group(members);
}

}  // namespace deepspeed
