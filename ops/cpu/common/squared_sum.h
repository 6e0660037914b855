// The sum of squares of an fp32 array on the CPU: the gradient norm behind clipping when the
// gradients live in host memory (ZeRO-Offload, CPU runs).
//
// Blocks of kSquaredSumBlock elements are summed in float over 16 independent lanes
// (vectorised by the SIMD variant: AVX-512, AVX2 or scalar, cpu/common/simd_level.h), the
// block sums in double, in order. So the result does not depend on the thread count, and it
// stays within 1e-6 (relative) of the exact sum where one float accumulator per thread
// (ATen's linalg_vector_norm in LibTorch 1.13) is 7 % low at 2^28 standard normals. Blocks
// are spread over OpenMP's threads (OMP_NUM_THREADS).
//
//   const double ss = squared_sum(grad.data(), grad.size());   // sqrt(ss) is the L2 norm
//
// Throws std::invalid_argument for n < 0 or a null array with n > 0; n may be 0.
#pragma once

#include <cstdint>
#include <optional>

#include "cpu/common/simd_level.h"

namespace deepspeed::ops {

inline constexpr int64_t kSquaredSumBlock = 4096;

double squared_sum(const float* x, int64_t n, std::optional<SimdLevel> level = std::nullopt);

}  // namespace deepspeed::ops
