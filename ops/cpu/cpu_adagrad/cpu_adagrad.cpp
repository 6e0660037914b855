#include "cpu/cpu_adagrad/cpu_adagrad.h"

#include <stdexcept>
#include <string>

#include "cpu/common/parallel_chunks.h"
#include "cpu/common/simd_variants.h"
#include "cpu/cpu_adagrad/adagrad_kernels.h"

namespace deepspeed::ops {
namespace {

using adagrad_detail::AdagradConstants;
using adagrad_detail::AdagradSpan;

using Kernel = void (*)(const AdagradConstants&, const AdagradSpan&);

constexpr SimdVariants<Kernel> kAdagrad = DS_SIMD_VARIANTS(adagrad_detail::adagrad);

}  // namespace

void adagrad_step(float* param, const float* grad, float* sum, int64_t n, const AdagradStep& step,
                  void* param_copy, CopyType copy, std::optional<SimdLevel> level) {
  if (n < 0) throw std::invalid_argument("adagrad_step: n = " + std::to_string(n) + " < 0");
  if (n > 0 && (!param || !grad || !sum)) throw std::invalid_argument("adagrad_step: null array");
  if (n > 0 && copy != CopyType::None && !param_copy) {
    throw std::invalid_argument("adagrad_step: a bf16/fp16 copy was asked for without an array");
  }
  const Kernel kernel = kAdagrad[resolve_simd_level(level)];
  AdagradConstants c{};
  c.step_size = static_cast<float>(-step.lr);
  c.eps = static_cast<float>(step.eps);
  c.weight_decay = static_cast<float>(step.weight_decay);
  c.decay = step.weight_decay != 0.0;
  c.copy = copy;
  auto* copy16 = static_cast<uint16_t*>(copy == CopyType::None ? nullptr : param_copy);
  parallel_chunks(n, [&](int64_t begin, int64_t end) {
    kernel(c, AdagradSpan{param + begin, grad + begin, sum + begin,
                          copy16 ? copy16 + begin : nullptr, end - begin});
  });
}

}  // namespace deepspeed::ops
