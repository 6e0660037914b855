#include "runtime/step/optimizer_wrapper.h"

namespace deepspeed {

int64_t optimizer_state_bytes(const Optimizer& optimizer) {
  int64_t total = 0;
  size_t index = 0;
  for (const auto& g : optimizer.param_groups()) {
    for (const auto& p : g.params) {
      if (index < optimizer.state().size()) {
        for (const auto& [key, t] : optimizer.state()[index]) {
          if (t.defined() && t.numel() == p.numel() && t.numel() > 1) {
            total += t.numel() * static_cast<int64_t>(t.element_size());
          }
        }
      }
      ++index;
    }
  }
  return total;
}

}  // namespace deepspeed
