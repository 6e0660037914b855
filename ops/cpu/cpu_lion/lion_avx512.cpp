// The AVX-512 variant of the Lion kernel (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq -mfma -mf16c): lion_avx2.cpp at twice the width.
#include "cpu/common/avx512_intrinsics.h"

#include <cstring>

#include "cpu/common/copy_store_avx512.h"
#include "cpu/common/prefetch.h"
#include "cpu/common/static_switch.h"
#include "cpu/cpu_lion/lion_kernels.h"

namespace deepspeed::ops::lion_detail {
namespace {

constexpr int kWidth = 16;

template <CopyType kCopy>
void run(const LionConstants& c, const LionSpan& s) {
  const __m512 lr = _mm512_set1_ps(c.lr);
  const __m512 minus_lr = _mm512_set1_ps(-c.lr);
  const __m512 beta1 = _mm512_set1_ps(c.beta1);
  const __m512 beta2 = _mm512_set1_ps(c.beta2);
  const __m512 one_minus_beta1 = _mm512_set1_ps(c.one_minus_beta1);
  const __m512 one_minus_beta2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 after_decay = _mm512_set1_ps(c.after_decay);
  const __m512 zero = _mm512_setzero_ps();

  auto block = [&](float* param, const float* grad, float* exp_avg, uint16_t* copy) {
    const __m512 g = _mm512_loadu_ps(grad);
    __m512 p = _mm512_loadu_ps(param);
    __m512 m = _mm512_loadu_ps(exp_avg);
    const __m512 mix = _mm512_fmadd_ps(g, one_minus_beta1, _mm512_mul_ps(m, beta1));
    // -lr * sign(mix), built from masks so that 0 stays 0 and NaN stays NaN.
    const __mmask16 positive = _mm512_cmp_ps_mask(mix, zero, _CMP_GT_OQ);
    const __mmask16 negative = _mm512_cmp_ps_mask(mix, zero, _CMP_LT_OQ);
    const __mmask16 nan = _mm512_cmp_ps_mask(mix, mix, _CMP_UNORD_Q);
    __m512 step = _mm512_maskz_mov_ps(positive, minus_lr);
    step = _mm512_mask_mov_ps(step, negative, lr);
    step = _mm512_mask_mov_ps(step, nan, mix);
    p = _mm512_fmadd_ps(p, after_decay, step);
    m = _mm512_fmadd_ps(g, one_minus_beta2, _mm512_mul_ps(m, beta2));
    _mm512_storeu_ps(param, p);
    _mm512_storeu_ps(exp_avg, m);
    avx512::store_copy<kCopy>(copy, p);
  };

  const int64_t full = s.n - s.n % kWidth;
  for (int64_t i = 0; i < full; i += kWidth) {
    if (i % kFloatsPerLine == 0) {
      prefetch_ahead(i, s.n, s.param, s.grad, s.exp_avg);
      if constexpr (kCopy != CopyType::None) prefetch_ahead(i, s.n, s.copy);
    }
    block(s.param + i, s.grad + i, s.exp_avg + i, kCopy == CopyType::None ? nullptr : s.copy + i);
  }
  // The last n % 16 elements go through the same vector code on zero-padded copies, so every
  // element's result is the same wherever a thread's chunk happens to end.
  const int64_t rest = s.n - full;
  if (rest == 0) return;
  const size_t bytes = static_cast<size_t>(rest) * sizeof(float);
  alignas(64) float p[kWidth] = {}, g[kWidth] = {}, m[kWidth] = {};
  alignas(32) uint16_t copy[kWidth] = {};
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

void lion_avx512(const LionConstants& c, const LionSpan& s) {
  with_copy_type(c.copy, [&](auto copy) { run<decltype(copy)::value>(c, s); });
}

}  // namespace deepspeed::ops::lion_detail
