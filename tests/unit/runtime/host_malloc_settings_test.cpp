// The engine's malloc settings on the CPU: freed blocks of a training step's sizes stay with
// the process (no fresh mmap and page faults each step), and a user's GLIBC_TUNABLES win.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "runtime/host_malloc_settings.h"
#include "scoped_env.h"

namespace deepspeed {
namespace {

using deepspeed::testing::ScopedEnv;


TEST(HostMallocSettings, BlocksOfAStepsSizeComeFromTheHeapNotFromMmap) {
#if defined(__GLIBC__)
  ScopedEnv env("GLIBC_TUNABLES", nullptr);
  const auto settings = keep_freed_host_memory_for_reuse();
  ASSERT_TRUE(settings.applied) << settings.detail;
  // glibc's default threshold (128 KiB, at most 32 MiB once raised by frees) would map 16 MiB.
  const auto mapped_before = mallinfo2().hblks;
  // volatile: the compiler may otherwise drop a malloc/free pair whose block never escapes.
  void* volatile block = std::malloc(std::size_t{16} << 20);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, std::size_t{16} << 20);
  EXPECT_EQ(mallinfo2().hblks, mapped_before) << "a 16 MiB block was mapped on its own";
  std::free(block);
  EXPECT_TRUE(keep_freed_host_memory_for_reuse().applied) << "a second call is harmless";
#else
  GTEST_SKIP() << "not glibc";
#endif
}

TEST(HostMallocSettings, TheUsersGlibcTunablesWin) {
  ScopedEnv env("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072");
  const auto settings = keep_freed_host_memory_for_reuse();
  EXPECT_FALSE(settings.applied);
  EXPECT_NE(settings.detail.find("GLIBC_TUNABLES"), std::string::npos) << settings.detail;
}

}  // namespace
}  // namespace deepspeed
