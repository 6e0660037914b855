// ZeRO-Offload's large host buffers are page-locked for exactly their size: PyTorch's
// caching host allocator would round 1 GiB + 4 KiB up to 2 GiB.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <string>

#include "runtime/step/pinned_host_memory.h"

namespace deepspeed {
namespace {

int64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      int64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    status.ignore(1 << 16, '\n');
  }
  return -1;
}

TEST(GpuPinnedHostMemory, IsPageLockedForExactlyItsSizeAndGivenBack) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU on this machine";
  if (!pinned_host_memory_is_exact()) GTEST_SKIP() << "this build has no CUDA runtime of its own (no CUDA ops built)";
  torch::zeros({1}, torch::kCUDA);  // the CUDA context first: it has resident memory of its own
  constexpr int64_t kGiB = int64_t{1} << 30;
  const int64_t numel = (kGiB + 4096) / 4;
  const int64_t before = resident_bytes();
  {
    auto t = pinned_host_empty(numel, torch::kFloat32);
    const int64_t held = resident_bytes() - before;
    EXPECT_TRUE(t.is_pinned());
    EXPECT_EQ(t.numel(), numel);
    EXPECT_EQ(t.count_nonzero().item<int64_t>(), 0);  // zero-filled
    EXPECT_GE(held, kGiB);
    EXPECT_LT(held, kGiB + kGiB / 8) << "page-locked more than asked for";
    // DMA both ways, bit for bit.
    t.copy_(torch::arange(numel, torch::TensorOptions().dtype(torch::kFloat32)));
    auto on_gpu = t.to(torch::kCUDA, /*non_blocking=*/true);
    auto back = pinned_host_empty(numel, torch::kFloat32);
    back.copy_(on_gpu, /*non_blocking=*/true);
    torch::cuda::synchronize();
    EXPECT_TRUE(torch::equal(back, t));
  }
  EXPECT_LT(resident_bytes() - before, kGiB / 8) << "not given back when the tensor died";
}

}  // namespace
}  // namespace deepspeed
