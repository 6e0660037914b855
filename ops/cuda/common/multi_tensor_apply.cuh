// Multi-tensor apply: one kernel launch updates many tensors. The tensors are cut into
// chunks of kChunkElements; each CUDA block takes one chunk. The table saying which block
// works on which tensor and chunk travels as a kernel argument (no host-to-device copy, no
// allocation), so a launch holds at most kMaxTensors tensors and kMaxBlocks chunks; the
// host loop launches again whenever either fills. Same scheme as apex's and DeepSpeed's
// multi_tensor_apply; written here for raw pointers, without LibTorch.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <cuda_runtime.h>

#include "cuda/common/cuda_check.h"

namespace deepspeed::ops::cuda {

inline constexpr int64_t kChunkElements = 65536;
inline constexpr int kBlockThreads = 512;

// Kernel arguments stay under 4 KiB (the limit before CUDA 12.1): Depth pointers per tensor.
template <int Depth>
struct TensorTable {
  static constexpr int kMaxTensors = Depth <= 4 ? 36 : 30;
  static constexpr int kMaxBlocks = 320;
  void* address[Depth][kMaxTensors];
  int64_t size[kMaxTensors];
  int32_t index[kMaxTensors];  // the tensor's position in the caller's list
  int32_t slot_base;           // global chunk number of this launch's block 0
  uint8_t block_tensor[kMaxBlocks];
  int32_t block_chunk[kMaxBlocks];
};

template <int Depth, typename Functor, typename... Args>
__global__ void __launch_bounds__(kBlockThreads) multi_tensor_kernel(TensorTable<Depth> table, Functor functor, Args... args) {
  functor(table, args...);
}

// Runs functor(table, args...) over every chunk of every tensor. `addresses[t][d]` is the
// d-th pointer of tensor t (parameter, gradient, ...), `sizes[t]` its element count. Chunks
// are numbered in tensor order ("slots"): block b of a launch has slot table.slot_base + b.
// Returns the number of slots in all.
template <int Depth, typename Functor, typename... Args>
int64_t multi_tensor_apply(const std::vector<std::array<void*, Depth>>& addresses,
                           const std::vector<int64_t>& sizes, cudaStream_t stream, Functor functor,
                           Args... args) {
  using Table = TensorTable<Depth>;
  Table table{};
  int tensors = 0;
  int blocks = 0;
  int64_t slot = 0;
  auto launch = [&] {
    multi_tensor_kernel<Depth><<<blocks, kBlockThreads, 0, stream>>>(table, functor, args...);
    DS_CUDA_CHECK(cudaGetLastError());
    table.slot_base = static_cast<int32_t>(slot);
    blocks = 0;
  };
  for (size_t t = 0; t < sizes.size(); ++t) {
    if (sizes[t] == 0) continue;
    if (tensors == Table::kMaxTensors) {
      if (blocks > 0) launch();
      tensors = 0;
    }
    int local = tensors++;
    for (int d = 0; d < Depth; ++d) table.address[d][local] = addresses[t][d];
    table.size[local] = sizes[t];
    table.index[local] = static_cast<int32_t>(t);
    const int64_t chunks = (sizes[t] + kChunkElements - 1) / kChunkElements;
    for (int64_t c = 0; c < chunks; ++c) {
      table.block_tensor[blocks] = static_cast<uint8_t>(local);
      table.block_chunk[blocks] = static_cast<int32_t>(c);
      ++blocks;
      ++slot;
      if (blocks < Table::kMaxBlocks) continue;
      launch();
      if (c + 1 < chunks) {  // the tensor goes on in the next launch, as that table's first
        for (int d = 0; d < Depth; ++d) table.address[d][0] = table.address[d][local];
        table.size[0] = table.size[local];
        table.index[0] = table.index[local];
        local = 0;
        tensors = 1;
      } else {
        tensors = 0;
      }
    }
  }
  if (blocks > 0) launch();
  return slot;
}

}  // namespace deepspeed::ops::cuda
