#include "runtime/autocast_guard.h"

#include <ATen/autocast_mode.h>

#include <deepspeed/torch_compat.h>

namespace deepspeed {
namespace {

// LibTorch 2.4 replaced the per-device functions by ones taking the device type (and
// deprecated the old ones); 1.13 has only the old ones.
#if DS_TORCH_AT_LEAST(2, 4)
bool enabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void set_enabled(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
torch::ScalarType dtype_of(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void set_dtype(bool cuda, torch::ScalarType t) { at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t); }
#else
bool enabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void set_enabled(bool cuda, bool on) { cuda ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on); }
torch::ScalarType dtype_of(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_dtype(bool cuda, torch::ScalarType t) {
  cuda ? at::autocast::set_autocast_gpu_dtype(t) : at::autocast::set_autocast_cpu_dtype(t);
}
#endif

}  // namespace

AutocastGuard::AutocastGuard(torch::Device device, torch::ScalarType dtype)
    : cuda_(device.is_cuda()), was_enabled_(enabled(cuda_)), previous_dtype_(dtype_of(cuda_)) {
  set_dtype(cuda_, dtype);
  set_enabled(cuda_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(cuda_, was_enabled_);
  set_dtype(cuda_, previous_dtype_);
}

}  // namespace deepspeed
