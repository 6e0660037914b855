// Device helpers shared by the transformer_inference kernels: block reductions and
// the switch from a DType to the element type a kernel template is instantiated for.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/common/cuda_check.h"
#include "cuda/common/dtype.h"
#include "cuda/common/vector_io.cuh"
#include "cuda/common/warp_reduce.cuh"

namespace deepspeed::ops::cuda::transformer_inference {

// The sum (or max) of v over the block, returned to every thread. shared: 33 floats; the
// leading barrier makes back-to-back calls safe.
template <bool kMax>
__device__ __forceinline__ float block_reduce(float v, float* shared) {
  v = kMax ? warp_max(v) : warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float t = lane < warps ? shared[lane] : (kMax ? -INFINITY : 0.0f);
    t = kMax ? warp_max(t) : warp_sum(t);
    if (lane == 0) shared[32] = t;
  }
  __syncthreads();
  return shared[32];
}

// Calls f(T{}) with T the element type of `dtype`.
template <typename F>
void with_element_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: f(float{}); break;
    case DType::Float16: f(__half{}); break;
    case DType::BFloat16: f(__nv_bfloat16{}); break;
  }
}

}  // namespace deepspeed::ops::cuda::transformer_inference
