// Sums and maxima over the 32 lanes of a warp, returned to every lane (butterfly shuffles).
#pragma once

namespace deepspeed::ops::cuda {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, d));
  return v;
}

}  // namespace deepspeed::ops::cuda
