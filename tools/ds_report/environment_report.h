// The "general environment" part of ds_report: this build (version, git hash, compiler,
// LibTorch, C++ ABI, CUDA/cuDNN/NCCL it was built with) and this machine (GPUs, CPU SIMD
// features, the SIMD level of the CPU optimizer ops, OpenMP threads, /dev/shm size).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace deepspeed::report {

struct EnvironmentReport {
  std::vector<std::pair<std::string, std::string>> lines;  // name, value
  std::vector<std::string> warnings;
  int gpu_count = 0;
};

EnvironmentReport environment_report();

// SIMD-related flags of /proc/cpuinfo text (x86 "flags", Arm "Features"), in a fixed order.
std::vector<std::string> simd_features(const std::string& cpuinfo);

}  // namespace deepspeed::report
