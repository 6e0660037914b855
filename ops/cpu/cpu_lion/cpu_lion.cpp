#include "cpu/cpu_lion/cpu_lion.h"

#include <stdexcept>
#include <string>

#include "cpu/common/parallel_chunks.h"
#include "cpu/common/simd_variants.h"
#include "cpu/cpu_lion/lion_kernels.h"

namespace deepspeed::ops {
namespace {

using lion_detail::LionConstants;
using lion_detail::LionSpan;

using Kernel = void (*)(const LionConstants&, const LionSpan&);

constexpr SimdVariants<Kernel> kLion = DS_SIMD_VARIANTS(lion_detail::lion);

}  // namespace

void lion_step(float* param, const float* grad, float* exp_avg, int64_t n, const LionStep& step,
               void* param_copy, CopyType copy, std::optional<SimdLevel> level) {
  if (n < 0) throw std::invalid_argument("lion_step: n = " + std::to_string(n) + " < 0");
  if (n > 0 && (!param || !grad || !exp_avg)) throw std::invalid_argument("lion_step: null array");
  if (n > 0 && copy != CopyType::None && !param_copy) {
    throw std::invalid_argument("lion_step: a bf16/fp16 copy was asked for without an array");
  }
  const Kernel kernel = kLion[resolve_simd_level(level)];
  LionConstants c{};
  c.lr = static_cast<float>(step.lr);
  c.beta1 = static_cast<float>(step.beta1);
  c.beta2 = static_cast<float>(step.beta2);
  c.one_minus_beta1 = static_cast<float>(1.0 - step.beta1);
  c.one_minus_beta2 = static_cast<float>(1.0 - step.beta2);
  // As src/optim: torch's mul_(1 - lr * wd) rounds the double factor to float.
  c.after_decay = static_cast<float>(1.0 - step.lr * step.weight_decay);
  c.copy = copy;
  auto* copy16 = static_cast<uint16_t*>(copy == CopyType::None ? nullptr : param_copy);
  parallel_chunks(n, [&](int64_t begin, int64_t end) {
    kernel(c, LionSpan{param + begin, grad + begin, exp_avg + begin,
                       copy16 ? copy16 + begin : nullptr, end - begin});
  });
}

}  // namespace deepspeed::ops
