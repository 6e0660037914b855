#include <string>

#include <deepspeed/errors.h>
#include <deepspeed/ops_config.h>
#include <deepspeed/quantizer.h>

#include "cpu/quantizer/quantizer.h"

#if DEEPSPEED_OP_QUANTIZER_CUDA_BUILT
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/quantizer/quantizer.h"
#endif

namespace deepspeed::ops::quantizer {
namespace {

constexpr int64_t kWeightGroupSize = 8000;  // DeepSpeed's CUDAQuantizer.target_group_size

void require_op(const char* function) {
  if (!quantizer_op_built()) {
    throw OpError(std::string("quantizer op: ") + function + "(): this build has no quantizer op (configured with "
                  "DS_BUILD_QUANTIZER=OFF)");
  }
}

void check_arguments(const char* function, int64_t n, int64_t groups, int bits) {
  const std::string f = std::string("quantizer op: ") + function + "(): ";
  if (bits != 4 && bits != 8) throw OpError(f + "bits must be 4 or 8, got " + std::to_string(bits));
  if (groups <= 0 || n % groups != 0) {
    throw OpError(f + "groups (" + std::to_string(groups) + ") must be positive and divide the " + std::to_string(n) +
                  " elements");
  }
  if (bits == 4 && (n / groups) % 2 != 0) {
    throw OpError(f + "4-bit values are packed two a byte: the group size " + std::to_string(n / groups) +
                  " must be even");
  }
}

void check_device(const char* function, const torch::Tensor& t) {
  if (t.is_cuda() && !quantizer_cuda_built()) {
    throw OpError(std::string("quantizer op: ") + function + "(): a CUDA tensor, but this build has no CUDA kernels");
  }
  if (!t.is_cuda() && !t.is_cpu()) {
    throw OpError(std::string("quantizer op: ") + function + "(): tensors on " + t.device().str() +
                  " are not supported (cpu or cuda)");
  }
}

#if DEEPSPEED_OP_QUANTIZER_CUDA_BUILT
void* stream_of(const torch::Tensor& t) { return at::cuda::getCurrentCUDAStream(t.device().index()).stream(); }
#endif

}  // namespace

bool quantizer_op_built() { return DEEPSPEED_OP_QUANTIZER_BUILT != 0; }

bool quantizer_cuda_built() { return DEEPSPEED_OP_QUANTIZER_CUDA_BUILT != 0; }

int64_t weight_groups(int64_t n) {
  if (n <= 0) return 1;
  const int64_t first = (n + kWeightGroupSize - 1) / kWeightGroupSize;
  if (n % 8 == 0) {
    for (int64_t g = first; g < n; ++g) {
      if (n % (8 * g) == 0) return g;
    }
  }
  for (int64_t g = first; g < n; ++g) {
    if (n % g == 0) return g;
  }
  return n;
}

QuantizedTensor quantize(const torch::Tensor& input, int64_t groups, int bits) {
  require_op("quantize");
  check_device("quantize", input);
  const int64_t n = input.numel();
  check_arguments("quantize", n, groups, bits);
  torch::NoGradGuard no_grad;
  const auto x = input.detach().reshape({-1}).to(torch::kFloat32).contiguous();
  QuantizedTensor q;
  q.numel = n;
  q.groups = groups;
  q.bits = bits;
  q.data = torch::empty({quantized_bytes(n, bits)}, x.options().dtype(torch::kInt8));
  q.scales = torch::empty({groups}, x.options());
  if (x.is_cuda()) {
#if DEEPSPEED_OP_QUANTIZER_CUDA_BUILT
    const c10::cuda::CUDAGuard guard(x.device());
    cuda::quantize_symmetric(x.data_ptr<float>(), n, groups, bits, q.data.data_ptr<int8_t>(), q.scales.data_ptr<float>(),
                             stream_of(x));
#endif
  } else {
    quantize_symmetric(x.data_ptr<float>(), n, groups, bits, q.data.data_ptr<int8_t>(), q.scales.data_ptr<float>());
  }
  return q;
}

torch::Tensor dequantize(const QuantizedTensor& q, torch::ScalarType dtype) {
  require_op("dequantize");
  check_device("dequantize", q.data);
  check_arguments("dequantize", q.numel, q.groups, q.bits);
  if (q.data.numel() != quantized_bytes(q.numel, q.bits) || q.scales.numel() != q.groups ||
      q.data.scalar_type() != torch::kInt8 || q.scales.scalar_type() != torch::kFloat32) {
    throw OpError("quantizer op: dequantize(): expected " + std::to_string(quantized_bytes(q.numel, q.bits)) +
                  " int8 bytes and " + std::to_string(q.groups) + " fp32 scales, got " + std::to_string(q.data.numel()) +
                  " " + c10::toString(q.data.scalar_type()) + " and " + std::to_string(q.scales.numel()) + " " +
                  c10::toString(q.scales.scalar_type()));
  }
  const auto data = q.data.contiguous();
  const auto scales = q.scales.to(data.device()).contiguous();
  auto out = torch::empty({q.numel}, data.options().dtype(torch::kFloat32));
  if (data.is_cuda()) {
#if DEEPSPEED_OP_QUANTIZER_CUDA_BUILT
    const c10::cuda::CUDAGuard guard(data.device());
    cuda::dequantize_symmetric(data.data_ptr<int8_t>(), scales.data_ptr<float>(), q.numel, q.groups, q.bits,
                               out.data_ptr<float>(), stream_of(data));
#endif
  } else {
    dequantize_symmetric(data.data_ptr<int8_t>(), scales.data_ptr<float>(), q.numel, q.groups, q.bits,
                         out.data_ptr<float>());
  }
  return dtype == torch::kFloat32 ? out : out.to(dtype);
}

torch::Tensor dequantize_reduce(const torch::Tensor& data, const torch::Tensor& scales, int64_t tensors, int64_t n,
                                int64_t groups, int bits) {
  require_op("dequantize_reduce");
  check_device("dequantize_reduce", data);
  check_arguments("dequantize_reduce", n, groups, bits);
  if (tensors <= 0 || data.numel() != tensors * quantized_bytes(n, bits) || scales.numel() != tensors * groups ||
      data.scalar_type() != torch::kInt8 || scales.scalar_type() != torch::kFloat32) {
    throw OpError("quantizer op: dequantize_reduce(): " + std::to_string(tensors) + " arrays of " + std::to_string(n) +
                  " values need " + std::to_string(tensors * quantized_bytes(n, bits)) + " int8 bytes and " +
                  std::to_string(tensors * groups) + " fp32 scales, got " + std::to_string(data.numel()) + " and " +
                  std::to_string(scales.numel()));
  }
  const auto d = data.contiguous();
  const auto s = scales.to(d.device()).contiguous();
  auto out = torch::empty({n}, d.options().dtype(torch::kFloat32));
  if (d.is_cuda()) {
#if DEEPSPEED_OP_QUANTIZER_CUDA_BUILT
    const c10::cuda::CUDAGuard guard(d.device());
    cuda::dequantize_reduce(d.data_ptr<int8_t>(), s.data_ptr<float>(), tensors, n, groups, bits, out.data_ptr<float>(),
                            stream_of(d));
#endif
  } else {
    ops::quantizer::dequantize_reduce(d.data_ptr<int8_t>(), s.data_ptr<float>(), tensors, n, groups, bits,
                                      out.data_ptr<float>());
  }
  return out;
}

}  // namespace deepspeed::ops::quantizer
