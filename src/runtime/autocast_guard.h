// LibTorch's autocast for one forward (the "torch_autocast" section): on entry, operations on
// this thread's `device` type run in `dtype` where autocast allows it (matrix products,
// convolutions), the parameters staying fp32; on exit the previous state comes back and the
// cast cache is cleared, as torch.autocast does when its outermost context ends.
#pragma once

#include <torch/types.h>

namespace deepspeed {

class AutocastGuard {
 public:
  AutocastGuard(torch::Device device, torch::ScalarType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool cuda_;
  bool was_enabled_;
  torch::ScalarType previous_dtype_;
};

}  // namespace deepspeed
