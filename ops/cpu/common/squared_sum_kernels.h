// Inside squared_sum: one block's sum of squares, once per SIMD variant
// (squared_sum_scalar.cpp, squared_sum_avx2.cpp, squared_sum_avx512.cpp). Each variant file
// compiles block_squared_sum_body with its own -m flags; the body has internal linkage so
// that the three copies stay apart (an inline function would be merged by the linker into
// whichever copy it saw first).
#pragma once

#include <cstdint>

#include "cpu/common/simd_variants.h"

namespace deepspeed::ops::squared_sum_detail {

double block_scalar(const float* x, int64_t n);
#if DS_CPU_X86_VARIANTS
double block_avx2(const float* x, int64_t n);
double block_avx512(const float* x, int64_t n);
#endif

namespace {

// 16 float lanes the compiler turns into one or two vector registers; the tail and the lanes
// are then added in double.
[[maybe_unused]] double block_squared_sum_body(const float* __restrict x, int64_t n) {
  constexpr int kLanes = 16;
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lane[j] += x[i + j] * x[i + j];
  }
  double block = 0.0;
  for (; i < n; ++i) block += static_cast<double>(x[i]) * x[i];
  for (float l : lane) block += l;
  return block;
}

}  // namespace
}  // namespace deepspeed::ops::squared_sum_detail
