#include "cuda/fused_lamb/fused_lamb.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "cuda/common/multi_tensor_apply.cuh"
#include "cuda/common/vector_io.cuh"

namespace deepspeed::ops::cuda {
namespace {

struct LambMath {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, grad_scale;
  bool eps_inside_sqrt;
  const double* grad_scale_device;

  __device__ __forceinline__ void load_scale() {
    if (grad_scale_device) grad_scale = static_cast<float>(*grad_scale_device);
  }

  // The new moments and the update of one element (p itself is not changed here).
  __device__ __forceinline__ float update(float p, float g, float& m, float& v) const {
    g *= grad_scale;
    m = beta1 * m + one_minus_beta1 * g;
    v = beta2 * v + one_minus_beta2 * g * g;
    const float denom = eps_inside_sqrt ? sqrtf(v + eps) : sqrtf(v) + eps;
    float u = m / denom;
    if (weight_decay != 0.0f) u = u + weight_decay * p;
    return u;
  }
};

__device__ __forceinline__ float block_sum(float x, float* shared) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_down_sync(0xffffffffu, x, offset);
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  x = threadIdx.x < blockDim.x / 32 ? shared[lane] : 0.0f;
  if (warp == 0) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_down_sync(0xffffffffu, x, offset);
  }
  return x;  // valid in thread 0
}

// Pass 1 (depth 4: param, grad, exp_avg, exp_avg_sq): per chunk, sum of p² and of u².
template <typename Grad>
struct NormFunctor {
  __device__ __forceinline__ void operator()(TensorTable<4>& table, LambMath math, float* partials) const {
    __shared__ float shared[kBlockThreads / 32];
    math.load_scale();
    const int t = table.block_tensor[blockIdx.x];
    const int64_t n = table.size[t];
    const int64_t begin = static_cast<int64_t>(table.block_chunk[blockIdx.x]) * kChunkElements;
    const int64_t end = min(n, begin + kChunkElements);
    const auto* p = static_cast<const float*>(table.address[0][t]);
    const auto* g = static_cast<const Grad*>(table.address[1][t]);
    const auto* m = static_cast<const float*>(table.address[2][t]);
    const auto* v = static_cast<const float*>(table.address[3][t]);
    float p2 = 0.0f;
    float u2 = 0.0f;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      float mi = m[i];
      float vi = v[i];
      const float pi = p[i];
      const float u = math.update(pi, to_float(g[i]), mi, vi);
      p2 += pi * pi;
      u2 += u * u;
    }
    p2 = block_sum(p2, shared);
    u2 = block_sum(u2, shared);
    if (threadIdx.x == 0) {
      const int64_t slot = table.slot_base + blockIdx.x;
      partials[2 * slot] = p2;
      partials[2 * slot + 1] = u2;
    }
  }
};

// Pass 2: one block per tensor adds its chunks' sums in a fixed order.
constexpr int kReduceBatch = 256;
struct ReduceBatch {
  int64_t first_slot[kReduceBatch];
  int32_t slots[kReduceBatch];
  int32_t tensor_base;
};

__global__ void trust_ratio_kernel(ReduceBatch batch, const float* partials, double* coeffs, double min_coeff,
                                   double max_coeff) {
  __shared__ double p2s[kBlockThreads];
  __shared__ double u2s[kBlockThreads];
  const int64_t first = batch.first_slot[blockIdx.x];
  double p2 = 0.0;
  double u2 = 0.0;
  for (int i = threadIdx.x; i < batch.slots[blockIdx.x]; i += blockDim.x) {
    p2 += partials[2 * (first + i)];
    u2 += partials[2 * (first + i) + 1];
  }
  p2s[threadIdx.x] = p2;
  u2s[threadIdx.x] = u2;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      p2s[threadIdx.x] += p2s[threadIdx.x + stride];
      u2s[threadIdx.x] += u2s[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double p_norm = sqrt(p2s[0]);
    const double u_norm = sqrt(u2s[0]);
    double coeff = 1.0;
    if (p_norm != 0.0 && u_norm != 0.0) coeff = fmin(fmax(p_norm / u_norm, min_coeff), max_coeff);
    coeffs[batch.tensor_base + blockIdx.x] = coeff;
  }
}

// Pass 3 (depth 5: param, grad, exp_avg, exp_avg_sq, copy): the update, stored.
template <typename Grad, typename Copy>
struct ApplyFunctor {
  __device__ __forceinline__ void operator()(TensorTable<5>& table, LambMath math, double step_size,
                                             const double* coeffs) const {
    math.load_scale();
    const int t = table.block_tensor[blockIdx.x];
    const int64_t n = table.size[t];
    const int64_t begin = static_cast<int64_t>(table.block_chunk[blockIdx.x]) * kChunkElements;
    const int64_t end = min(n, begin + kChunkElements);
    auto* p = static_cast<float*>(table.address[0][t]);
    const auto* g = static_cast<const Grad*>(table.address[1][t]);
    auto* m = static_cast<float*>(table.address[2][t]);
    auto* v = static_cast<float*>(table.address[3][t]);
    auto* c = static_cast<Copy*>(table.address[4][t]);
    // As the reference: p += update · (-(step_size · coeff)), the factor rounded once to float.
    const float alpha = static_cast<float>(-(step_size * coeffs[table.index[t]]));
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      float mi = m[i];
      float vi = v[i];
      float pi = p[i];
      const float u = math.update(pi, to_float(g[i]), mi, vi);
      pi = pi + alpha * u;
      p[i] = pi;
      m[i] = mi;
      v[i] = vi;
      if constexpr (!std::is_same_v<Copy, void>) c[i] = from_float<Copy>(pi);
    }
  }
};

int64_t slots_of(int64_t numel) { return (numel + kChunkElements - 1) / kChunkElements; }

template <typename Grad, typename Copy>
void run(const std::vector<LambTensor>& tensors, const LambStepArgs& args, double* coeffs, float* partials,
         cudaStream_t stream) {
  const LambMath math{args.beta1, args.one_minus_beta1, args.beta2, args.one_minus_beta2, args.eps, args.weight_decay, args.grad_scale, args.eps_inside_sqrt,
                      args.grad_scale_device};
  std::vector<std::array<void*, 4>> four;
  std::vector<std::array<void*, 5>> five;
  std::vector<int64_t> sizes;
  for (const auto& t : tensors) {
    four.push_back({t.param, const_cast<void*>(t.grad), t.exp_avg, t.exp_avg_sq});
    five.push_back({t.param, const_cast<void*>(t.grad), t.exp_avg, t.exp_avg_sq, t.param_copy});
    sizes.push_back(t.numel);
  }
  multi_tensor_apply<4>(four, sizes, stream, NormFunctor<Grad>{}, math, partials);

  int64_t slot = 0;
  for (size_t base = 0; base < tensors.size(); base += kReduceBatch) {
    ReduceBatch batch{};
    batch.tensor_base = static_cast<int32_t>(base);
    const size_t count = std::min<size_t>(kReduceBatch, tensors.size() - base);
    for (size_t i = 0; i < count; ++i) {
      batch.first_slot[i] = slot;
      batch.slots[i] = static_cast<int32_t>(slots_of(tensors[base + i].numel));
      slot += batch.slots[i];
    }
    trust_ratio_kernel<<<static_cast<unsigned>(count), kBlockThreads, 0, stream>>>(batch, partials, coeffs,
                                                                                    args.min_coeff, args.max_coeff);
    DS_CUDA_CHECK(cudaGetLastError());
  }
  multi_tensor_apply<5>(five, sizes, stream, ApplyFunctor<Grad, Copy>{}, math, args.step_size,
                        static_cast<const double*>(coeffs));
}

template <typename Grad>
void run_for_copy(const std::vector<LambTensor>& tensors, const LambStepArgs& args, bool copy, double* coeffs,
                  float* partials, cudaStream_t stream) {
  if (!copy) return run<Grad, void>(tensors, args, coeffs, partials, stream);
  switch (args.copy_dtype) {
    case DType::Float32: return run<Grad, float>(tensors, args, coeffs, partials, stream);
    case DType::Float16: return run<Grad, __half>(tensors, args, coeffs, partials, stream);
    case DType::BFloat16: return run<Grad, __nv_bfloat16>(tensors, args, coeffs, partials, stream);
  }
}

}  // namespace

size_t fused_lamb_workspace_bytes(const std::vector<LambTensor>& tensors) {
  int64_t slots = 0;
  for (const auto& t : tensors) slots += slots_of(t.numel);
  return static_cast<size_t>(std::max<int64_t>(slots, 1)) * 2 * sizeof(float);
}

void fused_lamb(const std::vector<LambTensor>& tensors, const LambStepArgs& args, double* coeffs, void* workspace,
                void* stream) {
  if (tensors.empty()) return;
  const bool copy = tensors.front().param_copy != nullptr;
  for (const auto& t : tensors) {
    if ((t.param_copy != nullptr) != copy) {
      throw std::invalid_argument("fused_lamb: either every tensor has a param_copy or none has");
    }
  }
  auto* partials = static_cast<float*>(workspace);
  auto s = static_cast<cudaStream_t>(stream);
  switch (args.grad_dtype) {
    case DType::Float32: return run_for_copy<float>(tensors, args, copy, coeffs, partials, s);
    case DType::Float16: return run_for_copy<__half>(tensors, args, copy, coeffs, partials, s);
    case DType::BFloat16: return run_for_copy<__nv_bfloat16>(tensors, args, copy, coeffs, partials, s);
  }
}

}  // namespace deepspeed::ops::cuda
