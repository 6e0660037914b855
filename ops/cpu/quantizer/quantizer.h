// DeepSpeed's quantizer op on the CPU: block (group) symmetric int8 / int4 quantization with
// one fp32 scale per group, the arithmetic of DeepSpeed's quantize / dequantize kernels, and
// the dequantize-and-sum that ZeRO++'s quantized gradient reduction runs on what it receives.
//
// Layout (DeepSpeed's `quantize(input, groups, bits, Symmetric)`): the n input values are
// `groups` consecutive groups of n / groups values. Per group, with m = max |x|:
//   q_scale = 2^bits / (2 m)            (1 when m is 0)
//   q       = clamp(round_half_even(x * q_scale), -2^(bits-1), 2^(bits-1) - 1)
//   scale   = 1 / q_scale               (stored, one float per group)
//   x'      = q * scale                 (dequantize)
// int8: one byte per value. int4: two values per byte, the first of each pair in the high
// nibble, the second in the low nibble, both two's complement (DeepSpeed's PackedInt4).
// So the bytes are n * bits / 8, the scales `groups` floats.
//
// Requirements, checked (std::invalid_argument naming the argument): bits 4 or 8, groups > 0
// dividing n, an even group size for 4 bits. Results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace deepspeed::ops::quantizer {

// Bytes quantize() writes for n values.
inline int64_t quantized_bytes(int64_t n, int bits) { return n * bits / 8; }

void quantize_symmetric(const float* input, int64_t n, int64_t groups, int bits, int8_t* output, float* scales);
void dequantize_symmetric(const int8_t* input, const float* scales, int64_t n, int64_t groups, int bits,
                          float* output);

// ZeRO++'s reduction of received quantized chunks: `tensors` quantized arrays of n values
// each (back to back in `input`, their `groups` scales each back to back in `scales`), each
// dequantized and summed, in array order, into output (n floats).
void dequantize_reduce(const int8_t* input, const float* scales, int64_t tensors, int64_t n, int64_t groups,
                       int bits, float* output);

}  // namespace deepspeed::ops::quantizer
