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

namespace deepspeed {
namespace {

// Sets or clears GLIBC_TUNABLES for one test, restoring it after.
class TunablesEnv {
 public:
  explicit TunablesEnv(const char* value) {
    if (const char* old = std::getenv("GLIBC_TUNABLES")) old_ = old;
    if (value) {
      setenv("GLIBC_TUNABLES", value, 1);
    } else {
      unsetenv("GLIBC_TUNABLES");
    }
  }
  ~TunablesEnv() {
    if (old_) {
      setenv("GLIBC_TUNABLES", old_->c_str(), 1);
    } else {
      unsetenv("GLIBC_TUNABLES");
    }
  }
  TunablesEnv(const TunablesEnv&) = delete;
  TunablesEnv& operator=(const TunablesEnv&) = delete;

 private:
  std::optional<std::string> old_;
};

TEST(HostMallocSettings, BlocksOfAStepsSizeComeFromTheHeapNotFromMmap) {
#if defined(__GLIBC__)
  TunablesEnv env(nullptr);
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
  TunablesEnv env("glibc.malloc.trim_threshold=131072");
  const auto settings = keep_freed_host_memory_for_reuse();
  EXPECT_FALSE(settings.applied);
  EXPECT_NE(settings.detail.find("GLIBC_TUNABLES"), std::string::npos) << settings.detail;
}

}  // namespace
}  // namespace deepspeed
