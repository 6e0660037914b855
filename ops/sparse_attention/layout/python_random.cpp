#include "sparse_attention/layout/python_random.h"

#include <bit>
#include <cmath>
#include <unordered_set>

namespace deepspeed::ops::sparse_attention::layout_detail {

namespace {

constexpr size_t kN = 624, kM = 397;

// init_genrand of the reference MT19937.
void init_genrand(std::array<uint32_t, kN>& mt, uint32_t s) {
  mt[0] = s;
  for (size_t i = 1; i < kN; ++i) mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + static_cast<uint32_t>(i);
}

}  // namespace

PythonRandom::PythonRandom(uint64_t seed) {
  // CPython's random_seed: the absolute value of the integer as 32-bit words, least
  // significant first, at least one word (0 seeds with [0]).
  std::vector<uint32_t> key = {static_cast<uint32_t>(seed)};
  if ((seed >> 32) != 0) key.push_back(static_cast<uint32_t>(seed >> 32));
  // init_by_array.
  auto& mt = state_;
  init_genrand(mt, 19650218u);
  size_t i = 1, j = 0;
  for (size_t k = std::max(kN, key.size()); k > 0; --k) {
    mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= kN) {
      mt[0] = mt[kN - 1];
      i = 1;
    }
    if (j >= key.size()) j = 0;
  }
  for (size_t k = kN - 1; k > 0; --k) {
    mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= kN) {
      mt[0] = mt[kN - 1];
      i = 1;
    }
  }
  mt[0] = 0x80000000u;
  index_ = kN;
}

uint32_t PythonRandom::next_uint32() {
  auto& mt = state_;
  if (index_ >= kN) {
    for (size_t k = 0; k < kN; ++k) {
      const uint32_t y = (mt[k] & 0x80000000u) | (mt[(k + 1) % kN] & 0x7fffffffu);
      mt[k] = mt[(k + kM) % kN] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    index_ = 0;
  }
  uint32_t y = mt[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint32_t PythonRandom::getrandbits(int bits) { return next_uint32() >> (32 - bits); }

int64_t PythonRandom::randbelow(int64_t n) {
  const int bits = std::bit_width(static_cast<uint64_t>(n));
  int64_t r = getrandbits(bits);
  while (r >= n) r = getrandbits(bits);
  return r;
}

std::vector<int64_t> PythonRandom::sample_range(int64_t n, int64_t k) {
  std::vector<int64_t> result(static_cast<size_t>(k));
  // CPython picks between a pool (small populations) and a set of picks (large ones); the
  // choice changes which numbers are drawn, so it is made the same way, in doubles.
  int64_t setsize = 21;
  if (k > 5) setsize += static_cast<int64_t>(std::pow(4.0, std::ceil(std::log(3.0 * k) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<int64_t> pool(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pool[i] = i;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = randbelow(n - i);
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<int64_t> selected;
    for (int64_t i = 0; i < k; ++i) {
      int64_t j = randbelow(n);
      while (selected.contains(j)) j = randbelow(n);
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

}  // namespace deepspeed::ops::sparse_attention::layout_detail
