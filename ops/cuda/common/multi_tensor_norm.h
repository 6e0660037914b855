// The squared L2 norm of many tensors together (for gradient clipping), in two launches and
// without a host synchronisation: per chunk, a sum of squares in float; then one block adds
// the chunks' sums in double in a fixed order, so the result does not depend on scheduling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/common/dtype.h"

namespace deepspeed::ops::cuda {

// Device bytes of the workspace squared_norm needs for tensors of these sizes.
size_t squared_norm_workspace_bytes(const std::vector<int64_t>& sizes);

// *out (device double) = (accumulate ? *out : 0) + Σ x² over every element of every tensor
// (all of element type `dtype`), enqueued on `stream`.
void squared_norm(const std::vector<const void*>& tensors, const std::vector<int64_t>& sizes, DType dtype,
                  double* out, bool accumulate, void* workspace, void* stream);

}  // namespace deepspeed::ops::cuda
