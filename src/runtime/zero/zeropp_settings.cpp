#include "runtime/zero/zeropp_settings.h"

#include <algorithm>
#include <string>

#include <deepspeed/errors.h>

namespace deepspeed {

ZeroPlusPlusSettings zeropp_settings(const ZeroConfig& zero, const comm::ProcessGroup& group) {
  ZeroPlusPlusSettings s;
  const auto& o = zero.other;
  const int64_t n = group.size();
  s.quantized_weights = o.value("zero_quantized_weights", false);
  s.quantized_gradients = o.value("zero_quantized_gradients", false);
  // DeepSpeed's _create_zero_param_parallel_group: min(h, world), which must divide the world.
  const int64_t h = std::min<int64_t>(std::max<int64_t>(o.value("zero_hpz_partition_size", int64_t{1}), 1), n);
  if (h > 1 && n % h != 0) {
    throw ConfigError("zero_optimization.zero_hpz_partition_size",
                      std::to_string(h) + " does not divide the data-parallel world size " + std::to_string(n) +
                          " (hpZ partitions each parameter again over groups of that many consecutive ranks)");
  }
  s.hpz_partition_size = h;
  if (s.quantized_gradients) {
    // DeepSpeed's nodes are accelerator.device_count() ranks each; ours the launcher's local size.
    const int64_t local = group.environment().local_size;
    s.node_size = local > 0 ? std::min(local, n) : n;
    if (n % s.node_size != 0) {
      throw ConfigError("zero_optimization.zero_quantized_gradients",
                        "the data-parallel world size " + std::to_string(n) + " is not a whole number of nodes of " +
                            std::to_string(s.node_size) + " ranks (LOCAL_SIZE); qgZ's all-to-all needs equal nodes");
    }
  }
  return s;
}

}  // namespace deepspeed
