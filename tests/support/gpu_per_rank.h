// Multi-process tests on a GPU machine run one rank per GPU over NCCL; where the machine has
// fewer GPUs than a test has ranks, the test skips and says so (a machine without an NVIDIA
// driver runs every rank on the CPU over Gloo and never skips). Torch-free, so that tests
// which only start binaries can use it too. At the top of a test:
//   DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace deepspeed::testing {

// GPUs a rank could be given: the entries of CUDA_VISIBLE_DEVICES where it is set, else the
// NVIDIA driver's list; -1 without a driver (the ranks run on the CPU).
inline int visible_gpus() {
  const std::filesystem::path driver = "/proc/driver/nvidia/gpus";
  std::error_code ec;
  if (!std::filesystem::is_directory(driver, ec)) return -1;
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    const std::string_view s = v;
    if (s.empty()) return 0;
    int n = 1;
    for (char c : s) n += c == ',' ? 1 : 0;
    return n;
  }
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(driver, ec)) n += entry.is_directory() ? 1 : 0;
  return n;
}

// Why `ranks` ranks cannot run here, or "" when they can.
inline std::string too_few_gpus_for(int ranks) {
  const int gpus = visible_gpus();
  if (gpus < 0 || gpus >= ranks) return "";
  return std::to_string(ranks) + " ranks need " + std::to_string(ranks) + " GPUs (one each, NCCL); this machine has " +
         std::to_string(gpus);
}

}  // namespace deepspeed::testing

#define DS_SKIP_WITHOUT_A_GPU_PER_RANK(ranks)                                            \
  do {                                                                                   \
    if (const auto why = ::deepspeed::testing::too_few_gpus_for(ranks); !why.empty()) { \
      GTEST_SKIP() << why;                                                               \
    }                                                                                    \
  } while (0)
