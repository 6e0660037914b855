#pragma once
// On the CPU, LibTorch allocates every tensor with malloc and frees it as its last reference
// goes. glibc's defaults hand blocks above the mmap threshold (128 KiB, rising by itself to
// at most 32 MiB) straight to the kernel, and give the heap's free top back above 128 KiB, so
// a training step maps and zero-fills its activations afresh every time: on a 2-core VM, a
// quarter of the CIFAR-10 tutorial network's step went to page faults. An engine running on
// the CPU therefore raises both limits once, so that freed memory is reused, as PyTorch's
// caching allocator does on a GPU. The cost: up to the trim threshold of free memory stays
// with the process instead of going back to the system.
#include <cstddef>
#include <string>

namespace deepspeed {

struct HostMallocSettings {
  bool applied = false;
  std::string detail;  // what was set, or why nothing was
};

// The values set: blocks up to this size come from the heap, and the heap's free top is
// kept up to kHostTrimThreshold.
inline constexpr std::size_t kHostMmapThreshold = std::size_t{32} << 20;  // glibc's maximum
inline constexpr std::size_t kHostTrimThreshold = std::size_t{1} << 30;

// Sets glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (mallopt) for this process, unless
// GLIBC_TUNABLES already sets a glibc.malloc tunable (the user's settings win) or this C
// library is not glibc. Safe to call more than once.
HostMallocSettings keep_freed_host_memory_for_reuse();

}  // namespace deepspeed
