// DS_CUDA_CHECK: a failed CUDA runtime call becomes a std::runtime_error naming the call,
// the file and line, and CUDA's own message (the ops have no LibTorch to raise c10::Error).
#pragma once

#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

#define DS_CUDA_CHECK(expr)                                                                  \
  do {                                                                                       \
    const cudaError_t ds_cuda_status_ = (expr);                                              \
    if (ds_cuda_status_ != cudaSuccess) {                                                    \
      throw std::runtime_error(std::string(#expr) + " failed at " + __FILE__ + ":" +         \
                               std::to_string(__LINE__) + ": " +                             \
                               cudaGetErrorString(ds_cuda_status_));                         \
    }                                                                                        \
  } while (0)
