// Page-locked (pinned) host tensors of exactly the size asked for.
//
// `pinned_memory(true)` goes through PyTorch's caching host allocator, which rounds every
// block up to the next power of two so that blocks can be reused: a 38.5 GiB fp32 master
// partition takes 64 GiB of page-locked memory that no one else can use. The large,
// long-lived buffers of ZeRO-Offload (fp32 masters, gradient partitions, parameter shards)
// are allocated once and kept, so they gain nothing from the cache and lose up to half of
// the host's memory to it. These are plain anonymous memory mapped for exactly the size and
// page-locked with cudaHostRegister (ordinary pages: they count in the process's RSS, and
// the kernel zero-fills them), unregistered and unmapped when the last tensor sharing the
// memory dies.
//
// Small buffers that come and go (staging of one bucket) should keep the caching allocator.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace deepspeed {

// A 1-D CPU tensor of `numel` elements of `dtype` in page-locked memory (zero-filled where
// exact; contents undefined otherwise).
// Where this build has no CUDA runtime, PyTorch's pinned allocator (rounded as above); throws
// EngineError, naming the size, when the memory cannot be page-locked.
torch::Tensor pinned_host_empty(int64_t numel, torch::ScalarType dtype);

// True when pinned_host_empty allocates exactly (this build has the CUDA runtime).
bool pinned_host_memory_is_exact();

}  // namespace deepspeed
