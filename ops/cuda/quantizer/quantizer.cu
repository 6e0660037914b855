// One block per group finds the group's largest magnitude (warp shuffles, then one warp over
// the warps' maxima), then its threads quantize the group's values; dequantization is one
// thread per value. The per-value arithmetic is the CPU op's, operation for operation, so the
// two agree bit for bit (nvcc's default IEEE division and rintf's round half to even).
#include "cuda/quantizer/quantizer.h"

#include <cuda_runtime.h>

#include "cuda/common/cuda_check.h"

namespace deepspeed::ops::cuda {
namespace {

constexpr int kThreads = 256;

__device__ int32_t quantize_value(float x, float q_scale, int bits) {
  const float q_min = static_cast<float>(-(1 << (bits - 1)));
  const float q_max = static_cast<float>((1 << (bits - 1)) - 1);
  const float v = rintf(x * q_scale);
  if (isnan(v)) return 0;
  return static_cast<int32_t>(fminf(fmaxf(v, q_min), q_max));
}

__device__ int32_t quantized_at(const int8_t* group, int64_t i, int bits) {
  if (bits == 8) return group[i];
  const auto byte = static_cast<uint8_t>(group[i / 2]);
  const int32_t v = (i % 2 == 0) ? (byte >> 4) : (byte & 0xF);
  return v >= 8 ? v - 16 : v;
}

__device__ float block_max(float v) {
  __shared__ float warp_max[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, offset));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_max[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_max[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, offset));
    if (lane == 0) warp_max[0] = v;
  }
  __syncthreads();
  return warp_max[0];
}

__global__ void quantize_kernel(const float* input, int64_t size, int bits, int8_t* output, float* scales) {
  const int64_t g = blockIdx.x;
  const float* x = input + g * size;
  float m = 0.0f;
  for (int64_t i = threadIdx.x; i < size; i += blockDim.x) m = fmaxf(m, fabsf(x[i]));
  m = block_max(m);
  const float q_scale = m == 0.0f ? 1.0f : static_cast<float>(1 << bits) / (2.0f * m);
  if (threadIdx.x == 0) scales[g] = 1.0f / q_scale;
  int8_t* out = output + g * size * bits / 8;
  if (bits == 8) {
    for (int64_t i = threadIdx.x; i < size; i += blockDim.x) out[i] = static_cast<int8_t>(quantize_value(x[i], q_scale, 8));
  } else {
    for (int64_t j = threadIdx.x; j < size / 2; j += blockDim.x) {
      const auto high = static_cast<uint8_t>(quantize_value(x[2 * j], q_scale, 4) & 0xF);
      const auto low = static_cast<uint8_t>(quantize_value(x[2 * j + 1], q_scale, 4) & 0xF);
      out[j] = static_cast<int8_t>(static_cast<uint8_t>(high << 4) | low);
    }
  }
}

__global__ void dequantize_kernel(const int8_t* input, const float* scales, int64_t n, int64_t size, int bits,
                                  float* output) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t g = i / size;
  output[i] = static_cast<float>(quantized_at(input + g * size * bits / 8, i % size, bits)) * scales[g];
}

__global__ void dequantize_reduce_kernel(const int8_t* input, const float* scales, int64_t tensors, int64_t n,
                                         int64_t groups, int bits, float* output) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t size = n / groups;
  const int64_t g = i / size;
  const int64_t bytes = n * bits / 8;
  float sum = 0.0f;
  for (int64_t t = 0; t < tensors; ++t) {
    // _rn: no contraction into an FMA, which the CPU kernel does not do either.
    const float v = __fmul_rn(static_cast<float>(quantized_at(input + t * bytes + g * size * bits / 8, i % size, bits)),
                              scales[t * groups + g]);
    sum = t == 0 ? v : __fadd_rn(sum, v);
  }
  output[i] = sum;
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

}  // namespace

void quantize_symmetric(const float* input, int64_t n, int64_t groups, int bits, int8_t* output, float* scales,
                        void* stream) {
  if (n == 0) return;
  quantize_kernel<<<static_cast<unsigned>(groups), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      input, n / groups, bits, output, scales);
  DS_CUDA_CHECK(cudaGetLastError());
}

void dequantize_symmetric(const int8_t* input, const float* scales, int64_t n, int64_t groups, int bits,
                          float* output, void* stream) {
  if (n == 0) return;
  dequantize_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(input, scales, n, n / groups,
                                                                                        bits, output);
  DS_CUDA_CHECK(cudaGetLastError());
}

void dequantize_reduce(const int8_t* input, const float* scales, int64_t tensors, int64_t n, int64_t groups,
                       int bits, float* output, void* stream) {
  if (n == 0) return;
  dequantize_reduce_kernel<<<blocks_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      input, scales, tensors, n, groups, bits, output);
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace deepspeed::ops::cuda
