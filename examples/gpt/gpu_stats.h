// GPU facts the GPT example reports: peak and current memory allocated through LibTorch's
// caching allocator (torch.cuda.max_memory_allocated, memory_allocated) and the GPU's dense
// bf16 peak for MFU. On a CPU device or a build without CUDA they are 0 and synchronize()
// does nothing.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#if DS_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

namespace gpu_stats {

inline void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

inline void reset_peak([[maybe_unused]] const torch::Device& device) {
#if DS_HAVE_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
}

inline int64_t peak_allocated_bytes([[maybe_unused]] const torch::Device& device) {
#if DS_HAVE_CUDA
  if (device.is_cuda()) {
    // allocated_bytes[0]: the aggregate over pool kinds (StatType::AGGREGATE).
    return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index()).allocated_bytes[0].peak;
  }
#endif
  return 0;
}

inline int64_t allocated_bytes([[maybe_unused]] const torch::Device& device) {
#if DS_HAVE_CUDA
  if (device.is_cuda()) {
    return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index()).allocated_bytes[0].current;
  }
#endif
  return 0;
}

// Dense bf16 tensor-core peak (FLOP/s) of known data-centre GPUs; 0 when unknown.
inline double peak_bf16_flops([[maybe_unused]] const torch::Device& device) {
#if DS_HAVE_CUDA
  if (!device.is_cuda()) return 0;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device.index()) != cudaSuccess) return 0;
  const std::string name = prop.name;
  if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos) return 989.4e12;
  if (name.find("A100") != std::string::npos) return 312e12;
#endif
  return 0;
}

}  // namespace gpu_stats
