// DeepSpeed's quantizer op (QuantizerBuilder) on tensors: block symmetric int8 / int4
// quantization with one fp32 scale per group, as ZeRO++ moves weights (qwZ, int8) and
// gradients (qgZ, int4). CPU tensors run the CPU kernels (OpenMP), CUDA tensors the CUDA
// kernels where the build has them; both give the same bytes and scales.
//
//   auto q = deepspeed::ops::quantizer::quantize(x, /*groups=*/4, /*bits=*/8);
//   auto y = deepspeed::ops::quantizer::dequantize(q, torch::kFloat);  // x within scale/2
//
// Promises (layout and formulas: ops/cpu/quantizer/quantizer.h, DeepSpeed's): `data` is int8,
// numel * bits / 8 bytes on the input's device (int4: two values a byte, the first in the
// high nibble); `scales` fp32, one per group (max|x| / 2^(bits-1), 1 for an all-zero group).
// Each dequantized value is within half a scale of its input. Bad arguments (bits other
// than 4 or 8, groups not dividing the element count, an odd 4-bit group) are an OpError
// naming them; without the op (DS_BUILD_QUANTIZER=OFF) every function throws OpError.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace deepspeed::ops::quantizer {

struct QuantizedTensor {
  torch::Tensor data;    // int8, numel * bits / 8
  torch::Tensor scales;  // fp32, groups
  int64_t numel = 0;
  int64_t groups = 1;
  int bits = 8;
};

// `input` is read as fp32 values in row-major order.
QuantizedTensor quantize(const torch::Tensor& input, int64_t groups, int bits);
// 1-D tensor of q.numel values in `dtype`.
torch::Tensor dequantize(const QuantizedTensor& q, torch::ScalarType dtype = torch::kFloat32);
// ZeRO++'s reduction of received chunks: `data` holds `tensors` quantized arrays of n values
// (each of `groups` groups), `scales` their scales back to back; the sum of their dequantized
// values, fp32, n elements.
torch::Tensor dequantize_reduce(const torch::Tensor& data, const torch::Tensor& scales, int64_t tensors, int64_t n,
                                int64_t groups, int bits);

// DeepSpeed's group count for quantized weights (CUDAQuantizer): about 8000 values a group, a
// multiple of 8 per group where n allows; else the fewest groups of at most 8000 values that
// divide n.
int64_t weight_groups(int64_t n);

bool quantizer_op_built();
// Whether this build has the CUDA kernels (else CUDA tensors are refused).
bool quantizer_cuda_built();

}  // namespace deepspeed::ops::quantizer
