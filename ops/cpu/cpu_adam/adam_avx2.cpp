// The AVX2 + FMA + F16C variant of the Adam kernel (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include <cstring>

#include "cpu/common/copy_store_avx2.h"
#include "cpu/common/prefetch.h"
#include "cpu/common/static_switch.h"
#include "cpu/cpu_adam/adam_kernels.h"

namespace deepspeed::ops::adam_detail {
namespace {

constexpr int kWidth = 8;

template <Decay kDecay, CopyType kCopy>
void run(const AdamConstants& c, const AdamSpan& s) {
  const __m256 beta1 = _mm256_set1_ps(c.beta1);
  const __m256 beta2 = _mm256_set1_ps(c.beta2);
  const __m256 one_minus_beta1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 one_minus_beta2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 eps = _mm256_set1_ps(c.eps);
  const __m256 step_size = _mm256_set1_ps(c.step_size);
  const __m256 bc2_rsqrt = _mm256_set1_ps(c.bc2_rsqrt);
  const __m256 decay = _mm256_set1_ps(c.decay);
  const __m256 grad_scale = _mm256_set1_ps(c.grad_scale);

  // DeepSpeed's Step_AVX, operation for operation.
  auto block = [&](float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                   uint16_t* copy) {
    __m256 g = _mm256_mul_ps(_mm256_loadu_ps(grad), grad_scale);
    __m256 p = _mm256_loadu_ps(param);
    __m256 m = _mm256_loadu_ps(exp_avg);
    __m256 v = _mm256_loadu_ps(exp_avg_sq);
    if constexpr (kDecay == Decay::L2) g = _mm256_fmadd_ps(p, decay, g);
    m = _mm256_fmadd_ps(g, one_minus_beta1, _mm256_mul_ps(m, beta1));
    v = _mm256_fmadd_ps(_mm256_mul_ps(g, g), one_minus_beta2, _mm256_mul_ps(v, beta2));
    const __m256 denom = _mm256_fmadd_ps(_mm256_sqrt_ps(v), bc2_rsqrt, eps);
    const __m256 update = _mm256_div_ps(m, denom);
    if constexpr (kDecay == Decay::Decoupled) p = _mm256_fmadd_ps(p, decay, p);
    p = _mm256_fmadd_ps(update, step_size, p);
    _mm256_storeu_ps(param, p);
    _mm256_storeu_ps(exp_avg, m);
    _mm256_storeu_ps(exp_avg_sq, v);
    avx2::store_copy<kCopy>(copy, p);
  };

  const int64_t full = s.n - s.n % kWidth;
  for (int64_t i = 0; i < full; i += kWidth) {
    if (i % kFloatsPerLine == 0) {
      prefetch_ahead(i, s.n, s.param, s.grad, s.exp_avg, s.exp_avg_sq);
      if constexpr (kCopy != CopyType::None) prefetch_ahead(i, s.n, s.copy);
    }
    block(s.param + i, s.grad + i, s.exp_avg + i, s.exp_avg_sq + i,
          kCopy == CopyType::None ? nullptr : s.copy + i);
  }
  // The last n % 8 elements go through the same vector code on zero-padded copies, so every
  // element's result is the same wherever a thread's chunk happens to end.
  const int64_t rest = s.n - full;
  if (rest == 0) return;
  const size_t bytes = static_cast<size_t>(rest) * sizeof(float);
  alignas(32) float p[kWidth] = {}, g[kWidth] = {}, m[kWidth] = {}, v[kWidth] = {};
  alignas(16) uint16_t copy[kWidth] = {};
  std::memcpy(p, s.param + full, bytes);
  std::memcpy(g, s.grad + full, bytes);
  std::memcpy(m, s.exp_avg + full, bytes);
  std::memcpy(v, s.exp_avg_sq + full, bytes);
  block(p, g, m, v, copy);
  std::memcpy(s.param + full, p, bytes);
  std::memcpy(s.exp_avg + full, m, bytes);
  std::memcpy(s.exp_avg_sq + full, v, bytes);
  if constexpr (kCopy != CopyType::None) {
    std::memcpy(s.copy + full, copy, static_cast<size_t>(rest) * sizeof(uint16_t));
  }
}

template <Decay kDecay>
void run_decay(const AdamConstants& c, const AdamSpan& s) {
  with_copy_type(c.copy, [&](auto copy) { run<kDecay, decltype(copy)::value>(c, s); });
}

}  // namespace

void adam_avx2(const AdamConstants& c, const AdamSpan& s) {
  switch (c.decay_mode) {
    case Decay::None:
      return run_decay<Decay::None>(c, s);
    case Decay::L2:
      return run_decay<Decay::L2>(c, s);
    case Decay::Decoupled:
      return run_decay<Decay::Decoupled>(c, s);
  }
}

}  // namespace deepspeed::ops::adam_detail
