#include "runtime/step/pinned_host_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <deepspeed/errors.h>
#include <deepspeed/ops_config.h>

// The CUDA runtime is linked wherever the CUDA ops are built (cmake/DeepSpeedOps.cmake).
#define DS_PINNED_WITH_CUDART (DEEPSPEED_OP_FUSED_ADAM_BUILT || DEEPSPEED_OP_FUSED_LAMB_BUILT)
#if DS_PINNED_WITH_CUDART
#include <cuda_runtime_api.h>
#endif

namespace deepspeed {

bool pinned_host_memory_is_exact() { return DS_PINNED_WITH_CUDART != 0; }

torch::Tensor pinned_host_empty(int64_t numel, torch::ScalarType dtype) {
  const auto options = torch::TensorOptions().dtype(dtype).device(torch::kCPU);
  if (numel == 0) return torch::empty({0}, options);
#if DS_PINNED_WITH_CUDART
  const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(dtype);
  void* data = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) {
    throw EngineError("could not map " + std::to_string(bytes) + " bytes of host memory: " + std::strerror(errno));
  }
  // Huge pages make faulting tens of GiB in (which registering does) several times quicker.
  ::madvise(data, bytes, MADV_HUGEPAGE);
  if (const cudaError_t e = cudaHostRegister(data, bytes, cudaHostRegisterDefault); e != cudaSuccess) {
    cudaGetLastError();  // clear it, so that the next CUDA call does not report it
    ::munmap(data, bytes);
    throw EngineError("could not page-lock " + std::to_string(bytes) + " bytes of host memory (" +
                      cudaGetErrorString(e) + "); set \"pin_memory\": false in the offload section to use pageable memory");
  }
  return torch::from_blob(
      data, {numel},
      [bytes](void* p) {
        cudaHostUnregister(p);
        ::munmap(p, bytes);
      },
      options);
#else
  return torch::empty({numel}, options.pinned_memory(true));
#endif
}

}  // namespace deepspeed
