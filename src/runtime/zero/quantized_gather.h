// One all-gather of equal shards, in full precision or, with ZeRO++'s quantized weights
// (qwZ, zero_quantized_weights), as block int8 with fp32 scales: each rank quantizes its
// shard (DeepSpeed's weight groups of about 8000 values, deepspeed/quantizer.h), the int8
// bytes and the scales are all-gathered, and every rank dequantizes the whole gathered buffer,
// its own shard included, so that all ranks hold the same values. On the wire: n + 4 x groups
// bytes per shard of n values instead of n x the element size.
//
// Collective over `group`: its members start and finish the same gathers in the same order.
#pragma once

#include <torch/types.h>

#include <deepspeed/comm.h>

namespace deepspeed {

class ShardGather {
 public:
  // Starts gathering `shard` (this rank's, 1-D) into a buffer of group.size() shards in `dtype`.
  ShardGather(comm::ProcessGroup& group, const torch::Tensor& shard, torch::ScalarType dtype, bool quantize,
              bool non_blocking_copy = false);
  // Waits, and returns the gathered buffer (dequantized where quantized). Once only.
  torch::Tensor finish(comm::ProcessGroup& group);

 private:
  torch::Tensor buffer_;  // the result; unquantized: gathered into directly
  torch::Tensor data_;    // quantized: int8 bytes of every shard
  torch::Tensor scales_;  // quantized: fp32 scales of every shard
  int64_t groups_ = 0;    // quantization groups per shard
  torch::ScalarType dtype_;
  compat::WorkPtr work_;
  compat::WorkPtr scale_work_;
};

}  // namespace deepspeed
