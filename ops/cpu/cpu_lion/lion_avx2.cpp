// The AVX2 + FMA + F16C variant of the Lion kernel (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include <cstring>

#include "cpu/common/copy_store_avx2.h"
#include "cpu/common/prefetch.h"
#include "cpu/common/static_switch.h"
#include "cpu/cpu_lion/lion_kernels.h"

namespace deepspeed::ops::lion_detail {
namespace {

constexpr int kWidth = 8;

template <CopyType kCopy>
void run(const LionConstants& c, const LionSpan& s) {
  const __m256 lr = _mm256_set1_ps(c.lr);
  const __m256 minus_lr = _mm256_set1_ps(-c.lr);
  const __m256 beta1 = _mm256_set1_ps(c.beta1);
  const __m256 beta2 = _mm256_set1_ps(c.beta2);
  const __m256 one_minus_beta1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 one_minus_beta2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 after_decay = _mm256_set1_ps(c.after_decay);
  const __m256 zero = _mm256_setzero_ps();

  auto block = [&](float* param, const float* grad, float* exp_avg, uint16_t* copy) {
    const __m256 g = _mm256_loadu_ps(grad);
    __m256 p = _mm256_loadu_ps(param);
    __m256 m = _mm256_loadu_ps(exp_avg);
    const __m256 mix = _mm256_fmadd_ps(g, one_minus_beta1, _mm256_mul_ps(m, beta1));
    // -lr * sign(mix), built from masks so that 0 stays 0 and NaN stays NaN.
    const __m256 positive = _mm256_cmp_ps(mix, zero, _CMP_GT_OQ);
    const __m256 negative = _mm256_cmp_ps(mix, zero, _CMP_LT_OQ);
    const __m256 nan = _mm256_cmp_ps(mix, mix, _CMP_UNORD_Q);
    const __m256 step =
        _mm256_or_ps(_mm256_or_ps(_mm256_and_ps(positive, minus_lr), _mm256_and_ps(negative, lr)),
                     _mm256_and_ps(nan, mix));
    p = _mm256_fmadd_ps(p, after_decay, step);
    m = _mm256_fmadd_ps(g, one_minus_beta2, _mm256_mul_ps(m, beta2));
    _mm256_storeu_ps(param, p);
    _mm256_storeu_ps(exp_avg, m);
    avx2::store_copy<kCopy>(copy, p);
  };

  const int64_t full = s.n - s.n % kWidth;
  for (int64_t i = 0; i < full; i += kWidth) {
    if (i % kFloatsPerLine == 0) {
      prefetch_ahead(i, s.n, s.param, s.grad, s.exp_avg);
      if constexpr (kCopy != CopyType::None) prefetch_ahead(i, s.n, s.copy);
    }
    block(s.param + i, s.grad + i, s.exp_avg + i, kCopy == CopyType::None ? nullptr : s.copy + i);
  }
  // The last n % 8 elements go through the same vector code on zero-padded copies, so every
  // element's result is the same wherever a thread's chunk happens to end.
  const int64_t rest = s.n - full;
  if (rest == 0) return;
  const size_t bytes = static_cast<size_t>(rest) * sizeof(float);
  alignas(32) float p[kWidth] = {}, g[kWidth] = {}, m[kWidth] = {};
  alignas(16) uint16_t copy[kWidth] = {};
  std::memcpy(p, s.param + full, bytes);
  std::memcpy(g, s.grad + full, bytes);
  std::memcpy(m, s.exp_avg + full, bytes);
  block(p, g, m, copy);
  std::memcpy(s.param + full, p, bytes);
  std::memcpy(s.exp_avg + full, m, bytes);
  if constexpr (kCopy != CopyType::None) {
    std::memcpy(s.copy + full, copy, static_cast<size_t>(rest) * sizeof(uint16_t));
  }
}

}  // namespace

void lion_avx2(const LionConstants& c, const LionSpan& s) {
  with_copy_type(c.copy, [&](auto copy) { run<decltype(copy)::value>(c, s); });
}

}  // namespace deepspeed::ops::lion_detail
