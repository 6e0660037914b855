// The AVX-512 variant of the Adagrad kernel (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq -mfma -mf16c): adagrad_avx2.cpp at twice the width.
#include "cpu/common/avx512_intrinsics.h"

#include <cstring>

#include "cpu/common/copy_store_avx512.h"
#include "cpu/common/prefetch.h"
#include "cpu/common/static_switch.h"
#include "cpu/cpu_adagrad/adagrad_kernels.h"

namespace deepspeed::ops::adagrad_detail {
namespace {

constexpr int kWidth = 16;

template <bool kDecay, CopyType kCopy>
void run(const AdagradConstants& c, const AdagradSpan& s) {
  const __m512 step_size = _mm512_set1_ps(c.step_size);
  const __m512 eps = _mm512_set1_ps(c.eps);
  const __m512 weight_decay = _mm512_set1_ps(c.weight_decay);

  auto block = [&](float* param, const float* grad, float* sum, uint16_t* copy) {
    __m512 g = _mm512_loadu_ps(grad);
    __m512 p = _mm512_loadu_ps(param);
    __m512 v = _mm512_loadu_ps(sum);
    if constexpr (kDecay) g = _mm512_fmadd_ps(p, weight_decay, g);
    v = _mm512_fmadd_ps(g, g, v);
    const __m512 update = _mm512_div_ps(g, _mm512_add_ps(_mm512_sqrt_ps(v), eps));
    p = _mm512_fmadd_ps(update, step_size, p);
    _mm512_storeu_ps(param, p);
    _mm512_storeu_ps(sum, v);
    avx512::store_copy<kCopy>(copy, p);
  };

  const int64_t full = s.n - s.n % kWidth;
  for (int64_t i = 0; i < full; i += kWidth) {
    if (i % kFloatsPerLine == 0) {
      prefetch_ahead(i, s.n, s.param, s.grad, s.sum);
      if constexpr (kCopy != CopyType::None) prefetch_ahead(i, s.n, s.copy);
    }
    block(s.param + i, s.grad + i, s.sum + i, kCopy == CopyType::None ? nullptr : s.copy + i);
  }
  // The last n % 16 elements go through the same vector code on zero-padded copies, so every
  // element's result is the same wherever a thread's chunk happens to end.
  const int64_t rest = s.n - full;
  if (rest == 0) return;
  const size_t bytes = static_cast<size_t>(rest) * sizeof(float);
  alignas(64) float p[kWidth] = {}, g[kWidth] = {}, v[kWidth] = {};
  alignas(32) uint16_t copy[kWidth] = {};
  std::memcpy(p, s.param + full, bytes);
  std::memcpy(g, s.grad + full, bytes);
  std::memcpy(v, s.sum + full, bytes);
  block(p, g, v, copy);
  std::memcpy(s.param + full, p, bytes);
  std::memcpy(s.sum + full, v, bytes);
  if constexpr (kCopy != CopyType::None) {
    std::memcpy(s.copy + full, copy, static_cast<size_t>(rest) * sizeof(uint16_t));
  }
}

template <bool kDecay>
void run_decay(const AdagradConstants& c, const AdagradSpan& s) {
  with_copy_type(c.copy, [&](auto copy) { run<kDecay, decltype(copy)::value>(c, s); });
}

}  // namespace

void adagrad_avx512(const AdagradConstants& c, const AdagradSpan& s) {
  if (c.decay) {
    run_decay<true>(c, s);
  } else {
    run_decay<false>(c, s);
  }
}

}  // namespace deepspeed::ops::adagrad_detail
