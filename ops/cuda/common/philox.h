// Philox4x32-10, the counter-based generator cuRAND and torch use for dropout, written so that
// the same function runs on the host and on the device: a dropout mask is a pure function of
// (seed, offset, element index). The transformer op keeps no masks in memory for that reason:
// backward regenerates them, and the CPU and CUDA paths drop exactly the same elements.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DS_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define DS_HOST_DEVICE inline
#endif

namespace deepspeed::ops::philox {

struct Uint4 {
  uint32_t v[4];
};

DS_HOST_DEVICE uint32_t mul_hi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Four 32-bit random words for one 128-bit counter (group, offset) under the key seed.
DS_HOST_DEVICE Uint4 random4(uint64_t seed, uint64_t offset, uint64_t group) {
  uint32_t c0 = static_cast<uint32_t>(group), c1 = static_cast<uint32_t>(group >> 32);
  uint32_t c2 = static_cast<uint32_t>(offset), c3 = static_cast<uint32_t>(offset >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = mul_hi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = mul_hi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Uint4{{c0, c1, c2, c3}};
}

// A word as a uniform float in [0, 1), from its top 24 bits (exact in float).
DS_HOST_DEVICE float to_unit(uint32_t word) { return static_cast<float>(word >> 8) * (1.0f / 16777216.0f); }

// Whether element `index` survives dropout with probability `ratio` of being dropped: the
// elements 4g..4g+3 share the counter g, one word each.
DS_HOST_DEVICE bool keep(uint64_t seed, uint64_t offset, uint64_t index, float ratio) {
  return to_unit(random4(seed, offset, index >> 2).v[index & 3]) >= ratio;
}

}  // namespace deepspeed::ops::philox
