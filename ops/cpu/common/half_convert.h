// Scalar conversions between float and the two 16-bit float formats, rounding to nearest
// even: the scalar kernels' copies, the SIMD kernels' references in tests, and the only path
// on CPUs without F16C.
//
// Every function here has internal linkage on purpose: this header is compiled into files
// built with different -m flags (scalar, AVX2, AVX-512). An inline function with external
// linkage would be one symbol, and the linker could keep the AVX-512 file's copy for all of
// them, which then faults on an AVX2 CPU.
#pragma once

#include <cstdint>
#include <cstring>

namespace deepspeed::ops::half {

static inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

static inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// bf16 is the top half of a float: add half an ulp of bf16 (minus one when the kept part is
// even, so that ties go to even) and truncate. A finite value that rounds past the largest
// bf16 becomes infinity, which is the correct rounding.
static inline uint16_t float_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

// IEEE binary16, in integer arithmetic so that it does not depend on the FPU's rounding
// mode, flush-to-zero or FMA contraction (the float-arithmetic trick of the FP16 library
// does).
static inline uint16_t float_to_half(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) {
    // NaN: quiet, keeping the top of the payload, as F16C does.
    return static_cast<uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  }
  // 65520 = 0x477FF000 is half-way between the largest half (65504) and 2^16; the tie goes
  // to the even neighbour, which is infinity.
  if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
  if (a >= 0x38800000u) {
    // Normal half (|f| >= 2^-14): round the mantissa to 10 bits (a carry moves into the
    // exponent, as it should), then rebias the exponent from 127 to 15.
    a += 0xFFFu + ((a >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((a - 0x38000000u) >> 13));
  }
  // Subnormal half: the result is |f| / 2^-24 rounded to an integer (0 to 1024; 1024 is the
  // smallest normal half, and its encoding is that integer too).
  const uint32_t exponent = a >> 23;
  if (exponent < 102) return sign;  // below 2^-25: rounds to zero
  const uint32_t mantissa = (a & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126u - exponent;  // 14 .. 24
  uint32_t r = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1u);
  if (rest > halfway || (rest == halfway && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

static inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return bits_float(sign | 0x7F800000u | (mantissa << 13));
  if (exponent != 0) return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_float(sign);
  // Subnormal half: normalise into a float.
  uint32_t e = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return bits_float(sign | (e << 23) | ((mantissa & 0x3FFu) << 13));
}

}  // namespace deepspeed::ops::half
