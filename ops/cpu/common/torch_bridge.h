// When src/optim hands a tensor's update to a CPU op (cpu_adam, cpu_adagrad, cpu_lion)
// instead of running its torch expression. The ops take raw fp32 pointers to contiguous CPU
// memory; everything else (GPU tensors, fp16/bf16/fp64, strided or sparse tensors) keeps the
// torch path. Header-only, and the one file under ops/ that sees LibTorch: the optimizers
// include it, the kernels never do.
#pragma once

#include <initializer_list>

#include <torch/types.h>

#include "cpu/common/param_copy.h"

namespace deepspeed::ops {

// True when every tensor is defined, a dense float32 CPU tensor, contiguous, not an inference
// tensor (its in-place update is an error that the torch path reports), and of the first
// tensor's size.
inline bool cpu_op_can_update(std::initializer_list<const torch::Tensor*> tensors) {
  const torch::Tensor& first = **tensors.begin();
  for (const torch::Tensor* t : tensors) {
    if (!t->defined() || t->layout() != torch::kStrided || !t->device().is_cpu() ||
        t->scalar_type() != torch::kFloat || !t->is_contiguous() || t->is_inference() ||
        t->numel() != first.numel()) {
      return false;
    }
  }
  return true;
}

// The op's in-pass 16-bit copy for `copy` (a dense contiguous CPU bf16/fp16 tensor of
// `numel` elements, not `param` itself), or CopyType::None where `copy` does not qualify and
// the caller copies afterwards.
inline CopyType cpu_op_copy_type(const torch::Tensor& copy, int64_t numel) {
  if (!copy.defined() || copy.layout() != torch::kStrided || !copy.device().is_cpu() || !copy.is_contiguous() ||
      copy.is_inference() || copy.numel() != numel) {
    return CopyType::None;
  }
  if (copy.scalar_type() == torch::kBFloat16) return CopyType::BFloat16;
  if (copy.scalar_type() == torch::kHalf) return CopyType::Float16;
  return CopyType::None;
}

// A write through a raw pointer, recorded as torch's in-place ops record theirs (the
// version counter), so that autograd still refuses a backward through a graph that saved the
// tensor before the optimizer changed it.
inline void mark_written(const torch::Tensor& t) { t.unsafeGetTensorImpl()->bump_version(); }

}  // namespace deepspeed::ops
