// Turns a run-time CopyType into a compile-time one, so that each kernel variant is
// instantiated once per copy type and its inner loop carries no branch on it. Internal
// linkage for the reason half_convert.h gives.
#pragma once

#include <type_traits>

#include "cpu/common/param_copy.h"

namespace deepspeed::ops {

template <CopyType kCopy>
using CopyTag = std::integral_constant<CopyType, kCopy>;

// Calls f(CopyTag<copy>{}).
template <class F>
static inline void with_copy_type(CopyType copy, F&& f) {
  switch (copy) {
    case CopyType::None:
      f(CopyTag<CopyType::None>{});
      return;
    case CopyType::BFloat16:
      f(CopyTag<CopyType::BFloat16>{});
      return;
    case CopyType::Float16:
      f(CopyTag<CopyType::Float16>{});
      return;
  }
}

}  // namespace deepspeed::ops
