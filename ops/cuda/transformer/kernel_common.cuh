// Device helpers shared by the transformer op's kernels: block sums (the warp sums are
// cuda/common/warp_reduce.cuh's), the dtype switch, and the dropout decision for four
// consecutive elements.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/common/cuda_check.h"
#include "cuda/common/dtype.h"
#include "cuda/common/philox.h"
#include "cuda/common/vector_io.cuh"
#include "cuda/common/warp_reduce.cuh"
#include "cuda/transformer/transformer_kernels.h"

namespace deepspeed::ops::cuda::transformer {

// The sums of a and b over the block, returned to every thread. shared: 66 floats. Safe to
// call again at once: a thread writes slots 0-63 only after every thread has read slots
// 64-65 of the previous call (they all pass the second barrier first).
__device__ __forceinline__ float2 block_sum2(float a, float b, float* shared) {
  a = warp_sum(a);
  b = warp_sum(b);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    shared[warp] = a;
    shared[32 + warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = (blockDim.x + 31) >> 5;
    float ta = lane < warps ? shared[lane] : 0.0f;
    float tb = lane < warps ? shared[32 + lane] : 0.0f;
    ta = warp_sum(ta);
    tb = warp_sum(tb);
    if (lane == 0) {
      shared[64] = ta;
      shared[65] = tb;
    }
  }
  __syncthreads();
  return make_float2(shared[64], shared[65]);
}

// The keep factors (0 or 1 / (1 - ratio)) of elements index..index+3, index a multiple of 4.
__device__ __forceinline__ Float4 dropout_factors(const Dropout& d, uint64_t index) {
  Float4 f;
  if (d.ratio <= 0.0f) {
#pragma unroll
    for (int i = 0; i < 4; ++i) f.v[i] = 1.0f;
    return f;
  }
  const float scale = 1.0f / (1.0f - d.ratio);
  const philox::Uint4 r = philox::random4(d.seed, d.offset, index >> 2);
#pragma unroll
  for (int i = 0; i < 4; ++i) f.v[i] = philox::to_unit(r.v[i]) >= d.ratio ? scale : 0.0f;
  return f;
}

// Four elements where the address may not be 4-aligned (a broadcast mask's rows).
template <typename T>
__device__ __forceinline__ Float4 load4_any(const T* p) {
  if (aligned4(p)) return load4(p);
  Float4 out;
#pragma unroll
  for (int i = 0; i < 4; ++i) out.v[i] = to_float(p[i]);
  return out;
}

// Runs the statements with T the element type of dtype.
#define DS_TRANSFORMER_DISPATCH(dtype, T, ...)                                          \
  switch (dtype) {                                                                     \
    case ::deepspeed::ops::cuda::DType::Float32: {                                     \
      using T = float;                                                                 \
      __VA_ARGS__;                                                                     \
      break;                                                                           \
    }                                                                                  \
    case ::deepspeed::ops::cuda::DType::Float16: {                                     \
      using T = __half;                                                                \
      __VA_ARGS__;                                                                     \
      break;                                                                           \
    }                                                                                  \
    case ::deepspeed::ops::cuda::DType::BFloat16: {                                    \
      using T = __nv_bfloat16;                                                         \
      __VA_ARGS__;                                                                     \
      break;                                                                           \
    }                                                                                  \
  }

inline void check_row(const char* kernel, int64_t cols, int64_t max_cols) {
  if (cols <= 0 || cols % 4 != 0 || cols > max_cols) {
    throw std::invalid_argument(std::string("transformer kernel ") + kernel + ": a row of " +
                                std::to_string(cols) + " elements; rows must be a multiple of 4 and at most " +
                                std::to_string(max_cols) + " long");
  }
}

inline int grid_for(int64_t groups, int threads) {
  const int64_t blocks = (groups + threads - 1) / threads;
  return static_cast<int>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

}  // namespace deepspeed::ops::cuda::transformer
