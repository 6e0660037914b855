// The quantizer op's CUDA kernels: the same block symmetric int8 / int4 quantization, its
// inverse, and the dequantize-and-sum of received chunks (ZeRO++'s quantized gradient
// reduction), over raw device pointers, fp32 in and out. Layout and arithmetic exactly as
// cpu/quantizer/quantizer.h states them, so both give the same bytes and scales (IEEE
// division, round half to even). Arguments are the CPU functions' and are checked there (the
// tensor API, deepspeed/quantizer.h); these only enqueue on `stream` (a cudaStream_t).
#pragma once

#include <cstdint>

namespace deepspeed::ops::cuda {

void quantize_symmetric(const float* input, int64_t n, int64_t groups, int bits, int8_t* output, float* scales,
                        void* stream);
void dequantize_symmetric(const int8_t* input, const float* scales, int64_t n, int64_t groups, int bits,
                          float* output, void* stream);
void dequantize_reduce(const int8_t* input, const float* scales, int64_t tensors, int64_t n, int64_t groups,
                       int bits, float* output, void* stream);

}  // namespace deepspeed::ops::cuda
