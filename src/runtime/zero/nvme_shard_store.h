// ZeRO-3's parameter shards on NVMe (offload_param {device: nvme}): this rank's partition of
// each optimizer group, in the model's dtype, one file per group under
// <nvme_path>/zero_stage_3/rank<r>/, read one bucket's slice at a time and rewritten after
// every step through the async_io op (include/deepspeed/async_io.h). The files are this
// run's scratch space: they are created at start-up and removed when the store goes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <deepspeed/async_io.h>
#include <deepspeed/config.h>

namespace deepspeed {

class NvmeShardStore {
 public:
  // `masters`: this rank's fp32 partition of each group, written out (cast to `dtype`).
  NvmeShardStore(const std::string& nvme_path, int64_t rank, torch::ScalarType dtype, const AioConfig& aio,
                 const std::vector<torch::Tensor>& masters);
  ~NvmeShardStore();
  NvmeShardStore(const NvmeShardStore&) = delete;
  NvmeShardStore& operator=(const NvmeShardStore&) = delete;

  // Replaces every group's shard with the masters, cast to the store's dtype.
  void write(const std::vector<torch::Tensor>& masters);
  // `length` elements of group `group`'s shard from element `offset`: a CPU tensor.
  torch::Tensor read(int64_t group, int64_t offset, int64_t length);
  const std::string& file(int64_t group) const { return files_.at(group); }

 private:
  std::string dir_;
  std::vector<std::string> files_;
  torch::ScalarType dtype_;
  ops::AioHandle aio_;
};

}  // namespace deepspeed
