// ZeRO++'s quantized gradient reduction (qgZ, zero_quantized_gradients): a reduce-scatter of a
// flat gradient bucket done as DeepSpeed's hierarchical all-to-all (all_to_all_quant_reduce),
// moving int4 values with fp32 scales instead of the gradients themselves.
//
// With N ranks in nodes of L consecutive ranks (M = N / L nodes) and the bucket cut into N
// slices of S values (slice r is rank r's):
//   1. the slices are reordered so that the ones bound for local rank d (slices a·L + d, for
//      every node a) lie together (DeepSpeed's swizzle), and quantized to int4 in groups that
//      never cross a slice;
//   2. all-to-all inside the node: local rank d receives those slices from each local peer;
//      it dequantizes and sums them (the quantizer op's dequantize_reduce) and quantizes the
//      M partial sums to int4 again;
//   3. all-to-all between the ranks of the same local index on every node: rank r receives
//      the node sums of its own slice from every node, dequantizes and sums them.
// Rank r's slice then holds the sum over all ranks (averaging is the caller's, as after a
// reduce-scatter). Per rank, (N-1)/N of the bucket crosses the network at half a byte a
// value, instead of 2 (N-1)/N at the comm dtype's size.
//
// As DeepSpeed: with a single node (M = 1) it is the plain reduce-scatter, and so is it
// (with a warning, once) for a bucket whose slices have an odd number of values.
#pragma once

#include <cstdint>
#include <memory>

#include <torch/types.h>

#include <deepspeed/comm.h>

namespace deepspeed {

class QuantizedReduceScatter {
 public:
  // `group`: the data-parallel group; `node_size`: ranks per node (L), dividing its size.
  // Collective: makes the intra-node and inter-node groups (every rank of `group` calls it).
  QuantizedReduceScatter(std::shared_ptr<comm::ProcessGroup> group, int64_t node_size);

  // In place: afterwards this rank's slice of `flat` holds the sum over ranks of that slice.
  void operator()(torch::Tensor& flat);

  int64_t nodes() const { return nodes_; }
  // Buckets reduced through the quantized all-to-all, and through the fallback.
  int64_t quantized_reductions() const { return quantized_; }
  int64_t fallback_reductions() const { return fallbacks_; }

 private:
  void reduce_scatter(torch::Tensor& flat);

  std::shared_ptr<comm::ProcessGroup> group_;
  std::shared_ptr<comm::ProcessGroup> intra_;  // this rank's node
  std::shared_ptr<comm::ProcessGroup> inter_;  // the ranks of this local index on every node
  int64_t node_size_;
  int64_t nodes_;
  int64_t quantized_ = 0;
  int64_t fallbacks_ = 0;
  bool warned_ = false;
};

// Quantization groups per slice of s values for qgZ: the fewest of at most 256 values, each
// of an even count (int4 packs two a byte). s must be even.
int64_t gradient_groups(int64_t s);

}  // namespace deepspeed
