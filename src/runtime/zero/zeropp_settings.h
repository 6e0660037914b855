// ZeRO++'s three switches (zero_optimization.zero_quantized_weights, zero_hpz_partition_size,
// zero_quantized_gradients), read for a stage-3 ZeroOptimizer and checked against its
// data-parallel group, with DeepSpeed's refusals as ConfigErrors naming the key.
#pragma once

#include <cstdint>

#include <deepspeed/comm.h>
#include <deepspeed/config.h>

namespace deepspeed {

struct ZeroPlusPlusSettings {
  bool quantized_weights = false;   // qwZ
  int64_t hpz_partition_size = 1;   // hpZ: min(zero_hpz_partition_size, N); 1 is off
  bool quantized_gradients = false; // qgZ
  int64_t node_size = 1;            // qgZ's ranks per node: the launcher's local size
};

// Throws ConfigError where the hpZ size does not divide the group's size or, with qgZ, the
// group is not whole nodes.
ZeroPlusPlusSettings zeropp_settings(const ZeroConfig& zero, const comm::ProcessGroup& group);

}  // namespace deepspeed
