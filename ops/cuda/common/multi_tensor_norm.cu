#include "cuda/common/multi_tensor_norm.h"

#include <algorithm>
#include <array>

#include "cuda/common/multi_tensor_apply.cuh"
#include "cuda/common/vector_io.cuh"

namespace deepspeed::ops::cuda {
namespace {

template <typename T>
struct SquaresFunctor {
  __device__ __forceinline__ void operator()(TensorTable<1>& table, float* partials) const {
    __shared__ float shared[kBlockThreads / 32];
    const int t = table.block_tensor[blockIdx.x];
    const int64_t n = table.size[t];
    const int64_t begin = static_cast<int64_t>(table.block_chunk[blockIdx.x]) * kChunkElements;
    const int64_t end = min(n, begin + kChunkElements);
    const auto* x = static_cast<const T*>(table.address[0][t]);
    float sum = 0.0f;
    int64_t scalar_from = begin;
    if (aligned4(x)) {
      const int64_t vector_end = begin + (end - begin) / 4 * 4;
      for (int64_t i = begin + 4 * static_cast<int64_t>(threadIdx.x); i < vector_end; i += 4 * blockDim.x) {
        const Float4 v = load4(x + i);
#pragma unroll
        for (int k = 0; k < 4; ++k) sum += v.v[k] * v.v[k];
      }
      scalar_from = vector_end;
    }
    for (int64_t i = scalar_from + threadIdx.x; i < end; i += blockDim.x) {
      const float v = to_float(x[i]);
      sum += v * v;
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
      float block = 0.0f;
      for (int w = 0; w < kBlockThreads / 32; ++w) block += shared[w];
      partials[table.slot_base + blockIdx.x] = block;
    }
  }
};

__global__ void sum_partials(const float* partials, int64_t count, double* out, bool accumulate) {
  __shared__ double shared[kBlockThreads];
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  shared[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = (accumulate ? *out : 0.0) + shared[0];
}

template <typename T>
void run(const std::vector<const void*>& tensors, const std::vector<int64_t>& sizes, double* out, bool accumulate,
         float* partials, cudaStream_t stream) {
  std::vector<std::array<void*, 1>> addresses;
  for (const void* t : tensors) addresses.push_back({const_cast<void*>(t)});
  const int64_t slots = multi_tensor_apply<1>(addresses, sizes, stream, SquaresFunctor<T>{}, partials);
  sum_partials<<<1, kBlockThreads, 0, stream>>>(partials, slots, out, accumulate);
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

size_t squared_norm_workspace_bytes(const std::vector<int64_t>& sizes) {
  int64_t slots = 0;
  for (int64_t n : sizes) slots += (n + kChunkElements - 1) / kChunkElements;
  return static_cast<size_t>(std::max<int64_t>(slots, 1)) * sizeof(float);
}

void squared_norm(const std::vector<const void*>& tensors, const std::vector<int64_t>& sizes, DType dtype,
                  double* out, bool accumulate, void* workspace, void* stream) {
  auto* partials = static_cast<float*>(workspace);
  auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::Float32: return run<float>(tensors, sizes, out, accumulate, partials, s);
    case DType::Float16: return run<__half>(tensors, sizes, out, accumulate, partials, s);
    case DType::BFloat16: return run<__nv_bfloat16>(tensors, sizes, out, accumulate, partials, s);
  }
}

}  // namespace deepspeed::ops::cuda
