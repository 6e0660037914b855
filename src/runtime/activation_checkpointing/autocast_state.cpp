#include "runtime/activation_checkpointing/autocast_state.h"

#include <ATen/autocast_mode.h>

#include <deepspeed/torch_compat.h>

namespace deepspeed::checkpointing::detail {
namespace {

// LibTorch 2.4 replaced the per-device functions by ones taking the device type (and
// deprecated the old ones); 1.13 has only the old ones.
#if DS_TORCH_AT_LEAST(2, 4)
bool is_on(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void turn(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
torch::ScalarType dtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void use_dtype(bool cuda, torch::ScalarType t) { at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t); }
#else
bool is_on(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void turn(bool cuda, bool on) { cuda ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on); }
torch::ScalarType dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void use_dtype(bool cuda, torch::ScalarType t) {
  cuda ? at::autocast::set_autocast_gpu_dtype(t) : at::autocast::set_autocast_cpu_dtype(t);
}
#endif

void put(const AutocastState& s) {
  turn(true, s.cuda_enabled);
  turn(false, s.cpu_enabled);
  use_dtype(true, s.cuda_dtype);
  use_dtype(false, s.cpu_dtype);
}

}  // namespace

AutocastState AutocastState::current() { return {is_on(true), is_on(false), dtype(true), dtype(false)}; }

AutocastScope::AutocastScope(const AutocastState& state) : previous_(AutocastState::current()) {
  put(state);
  // As an autocast region does: the casts it caches are dropped when the outermost one ends.
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  put(previous_);
}

}  // namespace deepspeed::checkpointing::detail
