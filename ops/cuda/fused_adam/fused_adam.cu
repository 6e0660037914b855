#include "cuda/fused_adam/fused_adam.h"

#include <array>
#include <stdexcept>
#include <type_traits>

#include "cuda/common/multi_tensor_apply.cuh"
#include "cuda/common/vector_io.cuh"

namespace deepspeed::ops::cuda {
namespace {

struct AdamMath {
  // 1 - β is computed on the host in double and rounded once, as the torch expression of
  // src/optim/adam.cpp passes it (1.0f - 0.999f in float would be off by 1.3e-5 relative).
  float lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, bias_correction1, bias_correction2,
      grad_scale;
  bool adamw_mode;
  const double* grad_scale_device;

  // FusedAdam's element update, in its order of operations.
  __device__ __forceinline__ void apply(float& p, float g, float& m, float& v) const {
    g *= grad_scale;
    if (!adamw_mode && weight_decay != 0.0f) g = g + weight_decay * p;
    m = beta1 * m + one_minus_beta1 * g;
    v = beta2 * v + one_minus_beta2 * g * g;
    float update = (m / bias_correction1) / (sqrtf(v / bias_correction2) + eps);
    if (adamw_mode && weight_decay != 0.0f) update = update + weight_decay * p;
    p = p - lr * update;
  }
};

// Depth 5: param, grad, exp_avg, exp_avg_sq, param copy (null when Copy is void).
template <typename Grad, typename Copy>
struct AdamFunctor {
  __device__ __forceinline__ void operator()(TensorTable<5>& table, AdamMath math) const {
    if (math.grad_scale_device) math.grad_scale = static_cast<float>(*math.grad_scale_device);
    const int t = table.block_tensor[blockIdx.x];
    const int64_t n = table.size[t];
    const int64_t begin = static_cast<int64_t>(table.block_chunk[blockIdx.x]) * kChunkElements;
    const int64_t end = min(n, begin + kChunkElements);
    auto* p = static_cast<float*>(table.address[0][t]);
    const auto* g = static_cast<const Grad*>(table.address[1][t]);
    auto* m = static_cast<float*>(table.address[2][t]);
    auto* v = static_cast<float*>(table.address[3][t]);
    auto* c = static_cast<Copy*>(table.address[4][t]);
    constexpr bool kCopy = !std::is_same_v<Copy, void>;

    bool vector_ok = aligned4(p) && aligned4(g) && aligned4(m) && aligned4(v);
    if constexpr (kCopy) vector_ok = vector_ok && aligned4(c);
    int64_t scalar_from = begin;
    if (vector_ok) {
      const int64_t vector_end = begin + (end - begin) / 4 * 4;
      const int64_t stride = 4 * static_cast<int64_t>(blockDim.x);
      auto update = [&](int64_t at, Float4& pv, const Float4& gv, Float4& mv, Float4& vv) {
#pragma unroll
        for (int k = 0; k < 4; ++k) math.apply(pv.v[k], gv.v[k], mv.v[k], vv.v[k]);
        store4(p + at, pv);
        store4(m + at, mv);
        store4(v + at, vv);
        if constexpr (kCopy) store4(c + at, pv);
      };
      int64_t i = begin + 4 * static_cast<int64_t>(threadIdx.x);
      // Two vectors of each array in flight per thread: eight loads issued before the first
      // use, which is what keeps enough bytes in flight to approach the copy's bandwidth.
      for (; i + stride < vector_end; i += 2 * stride) {
        Float4 p0 = load4(p + i), p1 = load4(p + i + stride);
        const Float4 g0 = load4(g + i), g1 = load4(g + i + stride);
        Float4 m0 = load4(m + i), m1 = load4(m + i + stride);
        Float4 v0 = load4(v + i), v1 = load4(v + i + stride);
        update(i, p0, g0, m0, v0);
        update(i + stride, p1, g1, m1, v1);
      }
      if (i < vector_end) {
        Float4 pv = load4(p + i);
        const Float4 gv = load4(g + i);
        Float4 mv = load4(m + i);
        Float4 vv = load4(v + i);
        update(i, pv, gv, mv, vv);
      }
      scalar_from = vector_end;
    }
    for (int64_t i = scalar_from + threadIdx.x; i < end; i += blockDim.x) {
      float pi = p[i];
      float mi = m[i];
      float vi = v[i];
      math.apply(pi, to_float(g[i]), mi, vi);
      p[i] = pi;
      m[i] = mi;
      v[i] = vi;
      if constexpr (kCopy) c[i] = from_float<Copy>(pi);
    }
  }
};

template <typename Grad, typename Copy>
void launch(const std::vector<AdamTensor>& tensors, const AdamMath& math, cudaStream_t stream) {
  std::vector<std::array<void*, 5>> addresses;
  std::vector<int64_t> sizes;
  addresses.reserve(tensors.size());
  sizes.reserve(tensors.size());
  for (const auto& t : tensors) {
    addresses.push_back({t.param, const_cast<void*>(t.grad), t.exp_avg, t.exp_avg_sq, t.param_copy});
    sizes.push_back(t.numel);
  }
  multi_tensor_apply<5>(addresses, sizes, stream, AdamFunctor<Grad, Copy>{}, math);
}

template <typename Grad>
void launch_for_copy(const std::vector<AdamTensor>& tensors, const AdamMath& math, bool copy, DType copy_dtype,
                     cudaStream_t stream) {
  if (!copy) return launch<Grad, void>(tensors, math, stream);
  switch (copy_dtype) {
    case DType::Float32: return launch<Grad, float>(tensors, math, stream);
    case DType::Float16: return launch<Grad, __half>(tensors, math, stream);
    case DType::BFloat16: return launch<Grad, __nv_bfloat16>(tensors, math, stream);
  }
}

}  // namespace

void fused_adam(const std::vector<AdamTensor>& tensors, const AdamStepArgs& args, void* stream) {
  if (tensors.empty()) return;
  const bool copy = tensors.front().param_copy != nullptr;
  for (const auto& t : tensors) {
    if ((t.param_copy != nullptr) != copy) {
      throw std::invalid_argument("fused_adam: either every tensor has a param_copy or none has");
    }
  }
  const AdamMath math{args.lr, args.beta1, args.one_minus_beta1, args.beta2, args.one_minus_beta2, args.eps,
                      args.weight_decay,
                      args.bias_correction1, args.bias_correction2, args.grad_scale, args.adamw_mode,
                      args.grad_scale_device};
  auto s = static_cast<cudaStream_t>(stream);
  switch (args.grad_dtype) {
    case DType::Float32: return launch_for_copy<float>(tensors, math, copy, args.copy_dtype, s);
    case DType::Float16: return launch_for_copy<__half>(tensors, math, copy, args.copy_dtype, s);
    case DType::BFloat16: return launch_for_copy<__nv_bfloat16>(tensors, math, copy, args.copy_dtype, s);
  }
}

}  // namespace deepspeed::ops::cuda
