// The autocast state a checkpoint's forward ran under (CPU and CUDA: on or off, and the
// dtype), so that the recompute in backward, which autograd runs outside it, computes in the
// same precision.
#pragma once

#include <torch/torch.h>

namespace deepspeed::checkpointing::detail {

struct AutocastState {
  bool cuda_enabled = false;
  bool cpu_enabled = false;
  torch::ScalarType cuda_dtype = torch::kHalf;
  torch::ScalarType cpu_dtype = torch::kBFloat16;

  static AutocastState current();
};

// Puts `state` in force while alive, and what was in force before back at the end.
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState previous_;
};

}  // namespace deepspeed::checkpointing::detail
