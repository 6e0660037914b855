#include "cpu/quantizer/quantizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace deepspeed::ops::quantizer {
namespace {

void check(const char* function, const void* a, const void* b, const void* c, int64_t n, int64_t groups, int bits) {
  const std::string f = std::string("quantizer: ") + function + "(): ";
  if (bits != 4 && bits != 8) throw std::invalid_argument(f + "bits must be 4 or 8, got " + std::to_string(bits));
  if (n < 0) throw std::invalid_argument(f + "n must not be negative, got " + std::to_string(n));
  if (groups <= 0 || n % groups != 0) {
    throw std::invalid_argument(f + "groups (" + std::to_string(groups) + ") must be positive and divide n (" +
                                std::to_string(n) + ")");
  }
  if (bits == 4 && (n / groups) % 2 != 0) {
    throw std::invalid_argument(f + "4-bit groups pack two values a byte: the group size (" + std::to_string(n / groups) +
                                ") must be even");
  }
  if (n > 0 && (!a || !b || !c)) throw std::invalid_argument(f + "null array");
}

// DeepSpeed's kernel converts with __float2int_rn: round half to even, as nearbyint in the
// default rounding mode.
int32_t quantize_value(float x, float q_scale, int bits) {
  const int32_t q_min = -(1 << (bits - 1));
  const int32_t q_max = (1 << (bits - 1)) - 1;
  const float v = std::nearbyint(x * q_scale);
  if (std::isnan(v)) return 0;
  return static_cast<int32_t>(std::clamp(v, static_cast<float>(q_min), static_cast<float>(q_max)));
}

int32_t nibble(uint8_t byte, bool high) {
  const int32_t v = high ? (byte >> 4) : (byte & 0xF);
  return v >= 8 ? v - 16 : v;
}

// Value i of a group's quantized bytes.
int32_t quantized_at(const int8_t* group, int64_t i, int bits) {
  if (bits == 8) return group[i];
  return nibble(static_cast<uint8_t>(group[i / 2]), i % 2 == 0);
}

}  // namespace

void quantize_symmetric(const float* input, int64_t n, int64_t groups, int bits, int8_t* output, float* scales) {
  check("quantize_symmetric", input, output, scales, n, groups, bits);
  const int64_t size = n / groups;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    const float* x = input + g * size;
    float max_abs = 0.0f;
    for (int64_t i = 0; i < size; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    const float q_scale = max_abs == 0.0f ? 1.0f : static_cast<float>(1 << bits) / (2.0f * max_abs);
    scales[g] = 1.0f / q_scale;
    int8_t* out = output + g * size * bits / 8;
    if (bits == 8) {
      for (int64_t i = 0; i < size; ++i) out[i] = static_cast<int8_t>(quantize_value(x[i], q_scale, bits));
    } else {
      for (int64_t i = 0; i < size; i += 2) {
        const auto high = static_cast<uint8_t>(quantize_value(x[i], q_scale, bits) & 0xF);
        const auto low = static_cast<uint8_t>(quantize_value(x[i + 1], q_scale, bits) & 0xF);
        out[i / 2] = static_cast<int8_t>(static_cast<uint8_t>(high << 4) | low);
      }
    }
  }
}

void dequantize_symmetric(const int8_t* input, const float* scales, int64_t n, int64_t groups, int bits,
                          float* output) {
  check("dequantize_symmetric", input, scales, output, n, groups, bits);
  const int64_t size = n / groups;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    const int8_t* in = input + g * size * bits / 8;
    float* out = output + g * size;
    for (int64_t i = 0; i < size; ++i) out[i] = static_cast<float>(quantized_at(in, i, bits)) * scales[g];
  }
}

void dequantize_reduce(const int8_t* input, const float* scales, int64_t tensors, int64_t n, int64_t groups, int bits,
                       float* output) {
  check("dequantize_reduce", input, scales, output, n, groups, bits);
  if (tensors <= 0) throw std::invalid_argument("quantizer: dequantize_reduce(): tensors must be positive");
  const int64_t size = n / groups;
  const int64_t bytes = quantized_bytes(n, bits);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    float* out = output + g * size;
    for (int64_t t = 0; t < tensors; ++t) {
      const int8_t* in = input + t * bytes + g * size * bits / 8;
      const float scale = scales[t * groups + g];
      for (int64_t i = 0; i < size; ++i) {
        const float v = static_cast<float>(quantized_at(in, i, bits)) * scale;
        out[i] = t == 0 ? v : out[i] + v;
      }
    }
  }
}

}  // namespace deepspeed::ops::quantizer
