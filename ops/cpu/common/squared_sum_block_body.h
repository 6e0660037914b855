// The body of the squared_sum_detail::block_* variants, included only by their files
// (squared_sum_scalar.cpp, _avx2.cpp, _avx512.cpp), each compiled with its own -m flags. It
// has internal linkage so that the three copies stay apart: an inline function would be
// merged by the linker into whichever copy it saw first.
#pragma once

#include <cstdint>

namespace deepspeed::ops::squared_sum_detail {
namespace {

// 16 float lanes the compiler turns into one or two vector registers; the tail and the lanes
// are then added in double.
double block_squared_sum_body(const float* __restrict x, int64_t n) {
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
