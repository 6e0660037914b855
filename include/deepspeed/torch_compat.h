// The one place that knows how LibTorch 1.13 (Debian's libtorch-dev) and LibTorch 2.x (a
// PyTorch wheel) differ in the parts deepspeed-cpp uses. Everything else includes this and
// writes code once.
#pragma once

#include <torch/version.h>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#define DS_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#if DS_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif

namespace deepspeed::compat {

// In 1.13 a concrete group (Gloo, NCCL) *is* a c10d::ProcessGroup; from 2.0 it is a
// c10d::Backend that a ProcessGroup wraps. Both offer the same collective calls, which is
// all we need, so we hold the concrete object under this name.
#if DS_TORCH_AT_LEAST(2, 0)
using Backend = c10d::Backend;
#else
using Backend = c10d::ProcessGroup;
#endif
using BackendPtr = c10::intrusive_ptr<Backend>;
using WorkPtr = c10::intrusive_ptr<c10d::Work>;

}  // namespace deepspeed::compat
