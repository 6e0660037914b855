#include "runtime/zero/quantized_gather.h"

#include <deepspeed/quantizer.h>

namespace deepspeed {

namespace q = ops::quantizer;

ShardGather::ShardGather(comm::ProcessGroup& group, const torch::Tensor& shard, torch::ScalarType dtype, bool quantize,
                         bool non_blocking_copy)
    : dtype_(dtype) {
  const int64_t n = shard.numel();
  const int64_t ranks = group.size();
  const auto device = group.device();
  if (!quantize) {
    buffer_ = torch::empty({n * ranks}, torch::TensorOptions().dtype(dtype).device(device));
    buffer_.narrow(0, group.rank() * n, n).copy_(shard, non_blocking_copy);
    if (ranks > 1) work_ = group.all_gather_async(buffer_);
    return;
  }
  groups_ = q::weight_groups(n);
  const auto quantized = q::quantize(shard.to(device, torch::kFloat32), groups_, 8);
  const int64_t bytes = quantized.data.numel();
  data_ = torch::empty({bytes * ranks}, quantized.data.options());
  data_.narrow(0, group.rank() * bytes, bytes).copy_(quantized.data);
  scales_ = torch::empty({groups_ * ranks}, quantized.scales.options());
  scales_.narrow(0, group.rank() * groups_, groups_).copy_(quantized.scales);
  if (ranks > 1) {
    work_ = group.all_gather_async(data_);
    scale_work_ = group.all_gather_async(scales_);
  }
}

torch::Tensor ShardGather::finish(comm::ProcessGroup& group) {
  if (work_) group.wait(work_, "all_gather (ZeRO-3 parameters)");
  if (scale_work_) group.wait(scale_work_, "all_gather (ZeRO-3 parameter scales)");
  work_.reset();
  scale_work_.reset();
  if (!data_.defined()) return buffer_;
  q::QuantizedTensor gathered;
  gathered.data = data_;
  gathered.scales = scales_;
  gathered.numel = data_.numel();
  gathered.groups = scales_.numel();
  gathered.bits = 8;
  return q::dequantize(gathered, dtype_);
}

}  // namespace deepspeed
