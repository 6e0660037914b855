#include "runtime/zero/gradient_partitions.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include "runtime/step/pinned_host_memory.h"
#include "runtime/step/precision.h"
#include "runtime/zero/tensor_storage.h"

namespace deepspeed {

GradientPartitions::GradientPartitions(const BucketPlan& plan, int64_t groups, Options options)
    : plan_(plan), options_(options), written_(plan.buckets.size(), 0), slice_norms_valid_(options.track_slice_norms) {
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t size = g < static_cast<int64_t>(plan_.group_size.size()) ? plan_.partition_size(g) : 0;
    if (options_.pinned) {
      partitions_.push_back(pinned_host_empty(size, options_.dtype));
    } else {
      partitions_.push_back(torch::empty({size}, torch::TensorOptions().dtype(options_.dtype).device(options_.device)));
      if (options_.release_between_steps) free_storage(partitions_.back());
    }
  }
}

GradientPartitions::~GradientPartitions() {
  if (!copies_in_flight_) return;
  try {
    torch::cuda::synchronize(copy_source_.has_index() ? copy_source_.index() : -1);
  } catch (...) {  // a failed device is reported by whatever used it; a destructor must not throw
  }
}

torch::Tensor GradientPartitions::place_of(int64_t bucket) {
  const auto& b = plan_.buckets[static_cast<size_t>(bucket)];
  auto& partition = partitions_[static_cast<size_t>(b.group)];
  allocate_storage(partition);
  return partition.narrow(0, b.group_offset / plan_.partitions, b.slice);
}

void GradientPartitions::accumulate(int64_t bucket, const torch::Tensor& slice) {
  auto dst = place_of(bucket);
  const bool first = !written_[static_cast<size_t>(bucket)];
  written_[static_cast<size_t>(bucket)] = 1;
  if (slice.device() == dst.device() && slice.scalar_type() == dst.scalar_type()) {
    first ? dst.copy_(slice) : dst.add_(slice);
    return;
  }
  if (!(slice.is_cuda() && dst.is_cpu())) {
    first ? dst.copy_(slice) : dst.add_(slice.to(dst.device(), dst.scalar_type()));
    return;
  }
  if (!first) {
    slice_norms_valid_ = false;  // accumulated: the partition's norm is not the slices'
  } else if (slice_norms_valid_) {
    auto sq = squared_norm({slice}, slice.device()).to(torch::kFloat64);
    slice_norms_ = slice_norms_.defined() ? slice_norms_ + sq : sq;
  }
  // Offloaded gradients: converted on the GPU and copied into pinned memory (a copy into
  // pageable memory goes through the driver's bounce buffer at a fraction of the PCIe speed,
  // and .to(kCPU, kFloat32) of a bf16 slice converted on the CPU besides). Pinned partitions
  // take the first slice straight and without waiting for it: the copy runs in stream order
  // while backward goes on, and complete() waits for it. The rest goes through the staging
  // buffer (a blocking copy, so also after any earlier one into the same place) and is added
  // on the CPU by ATen's threads.
  if (first && options_.pinned) {
    dst.copy_(slice.to(dst.scalar_type()), /*non_blocking=*/true);
    copies_in_flight_ = true;
    copy_source_ = slice.device();
    return;
  }
  const int64_t n = slice.numel();
  if (!staging_.defined() || staging_.numel() < n) {
    staging_ = torch::empty({n}, torch::TensorOptions().dtype(dst.scalar_type()).pinned_memory(true));
  }
  auto staged = staging_.narrow(0, 0, n);
  staged.copy_(slice.to(dst.scalar_type()));
  first ? dst.copy_(staged) : dst.add_(staged);
}

void GradientPartitions::complete() {
  if (copies_in_flight_) {
    torch::cuda::synchronize(copy_source_.has_index() ? copy_source_.index() : -1);
    copies_in_flight_ = false;
  }
  for (size_t i = 0; i < plan_.buckets.size(); ++i) {
    if (written_[i]) continue;
    place_of(static_cast<int64_t>(i)).zero_();
    written_[i] = 1;
  }
}

void GradientPartitions::clear() {
  std::fill(written_.begin(), written_.end(), 0);
  slice_norms_ = torch::Tensor();
  slice_norms_valid_ = options_.track_slice_norms;
  if (!options_.release_between_steps) return;
  for (auto& p : partitions_) free_storage(p);
}

torch::Tensor GradientPartitions::slice_squared_norm() const {
  return slice_norms_valid_ ? slice_norms_ : torch::Tensor();
}

int64_t GradientPartitions::bytes_held() const {
  int64_t total = 0;
  for (const auto& p : partitions_) total += static_cast<int64_t>(p.storage().nbytes());  // 0 between steps when released
  return total;
}

}  // namespace deepspeed
