// Python's `random` module, as far as DeepSpeed's sparsity layouts use it: random.seed(n) for
// a non-negative integer n and random.sample(range(n), k). The same Mersenne Twister
// (MT19937 seeded through init_by_array, as CPython seeds it from an integer) and the same
// sampling algorithm, so that a layout drawn here equals DeepSpeed's after random.seed(n).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace deepspeed::ops::sparse_attention::layout_detail {

class PythonRandom {
 public:
  explicit PythonRandom(uint64_t seed);

  // random.sample(range(n), k): k distinct values of [0, n) in draw order; 0 <= k <= n.
  std::vector<int64_t> sample_range(int64_t n, int64_t k);

 private:
  uint32_t next_uint32();
  uint32_t getrandbits(int bits);  // 1 <= bits <= 32
  int64_t randbelow(int64_t n);    // n >= 1 and below 2^32

  std::array<uint32_t, 624> state_{};
  size_t index_ = 624;
};

}  // namespace deepspeed::ops::sparse_attention::layout_detail
