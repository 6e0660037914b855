#include "optim/fused_cuda.h"

#include <optional>

#include <deepspeed/ops_config.h>

#include "deepspeed/errors.h"

#if DEEPSPEED_OP_FUSED_ADAM_BUILT || DEEPSPEED_OP_FUSED_LAMB_BUILT
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "cpu/common/torch_bridge.h"
#include "cuda/common/dtype.h"
#include "cuda/common/multi_tensor_norm.h"
#endif
#if DEEPSPEED_OP_FUSED_ADAM_BUILT
#include "cuda/fused_adam/fused_adam.h"
#endif
#if DEEPSPEED_OP_FUSED_LAMB_BUILT
#include "cuda/fused_lamb/fused_lamb.h"
#endif

namespace deepspeed::fused_cuda_detail {
namespace {

bool is_float_type(torch::ScalarType t) {
  return t == torch::kFloat || t == torch::kHalf || t == torch::kBFloat16;
}

bool dense_on(const torch::Tensor& t, const torch::Device& device, int64_t numel) {
  return t.defined() && t.layout() == torch::kStrided && t.device() == device && t.is_contiguous() &&
         t.numel() == numel && is_float_type(t.scalar_type());
}

#if DEEPSPEED_OP_FUSED_ADAM_BUILT || DEEPSPEED_OP_FUSED_LAMB_BUILT
ops::cuda::DType dtype_of(torch::ScalarType t) {
  switch (t) {
    case torch::kHalf: return ops::cuda::DType::Float16;
    case torch::kBFloat16: return ops::cuda::DType::BFloat16;
    default: return ops::cuda::DType::Float32;
  }
}

// Items of one launch share the gradient dtype and whether (and in which dtype) they copy.
template <typename F>
void for_each_kind(const std::vector<Item>& items, F&& launch) {
  std::vector<bool> done(items.size(), false);
  for (size_t i = 0; i < items.size(); ++i) {
    if (done[i]) continue;
    const auto grad_type = items[i].grad.scalar_type();
    const bool copy = items[i].copy.defined();
    const auto copy_type = copy ? items[i].copy.scalar_type() : torch::kFloat;
    std::vector<size_t> same;
    for (size_t j = i; j < items.size(); ++j) {
      const bool j_copy = items[j].copy.defined();
      if (!done[j] && items[j].grad.scalar_type() == grad_type && j_copy == copy &&
          (!copy || items[j].copy.scalar_type() == copy_type)) {
        same.push_back(j);
        done[j] = true;
      }
    }
    launch(same, dtype_of(grad_type), dtype_of(copy_type));
  }
}

// The scale's value for the kernel: a device pointer when it lives on the GPU, else a float.
void set_scale(const torch::Tensor& scale, float& value, const double*& device) {
  value = 1.0f;
  device = nullptr;
  if (!scale.defined()) return;
  if (scale.is_cuda()) {
    TORCH_CHECK(scale.scalar_type() == torch::kFloat64 && scale.numel() == 1, "grad_scale must be one float64");
    device = scale.data_ptr<double>();
  } else {
    value = static_cast<float>(scale.item<double>());
  }
}

void mark_written(const Item& item) {
  ops::mark_written(item.param);
  ops::mark_written(item.exp_avg);
  ops::mark_written(item.exp_avg_sq);
  if (item.copy.defined()) ops::mark_written(item.copy);
}
#endif

}  // namespace

bool adam_available() { return DEEPSPEED_OP_FUSED_ADAM_BUILT != 0; }
bool lamb_available() { return DEEPSPEED_OP_FUSED_LAMB_BUILT != 0; }

bool can_update(const Item& item) {
  const auto& p = item.param;
  if (!p.defined() || !p.is_cuda() || p.scalar_type() != torch::kFloat || p.is_inference()) return false;
  const auto device = p.device();
  const int64_t n = p.numel();
  for (const auto* t : {&item.param, &item.exp_avg, &item.exp_avg_sq}) {
    if (!dense_on(*t, device, n) || t->scalar_type() != torch::kFloat || t->is_inference()) return false;
  }
  if (!dense_on(item.grad, device, n)) return false;
  if (item.copy.defined() && (!dense_on(item.copy, device, n) || item.copy.is_inference())) return false;
  return true;
}

void adam([[maybe_unused]] const std::vector<Item>& items, [[maybe_unused]] const AdamScalars& s) {
#if DEEPSPEED_OP_FUSED_ADAM_BUILT
  if (items.empty()) return;
  const c10::cuda::CUDAGuard guard(items.front().param.device());
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  for_each_kind(items, [&](const std::vector<size_t>& which, ops::cuda::DType grad_type, ops::cuda::DType copy_type) {
    std::vector<ops::cuda::AdamTensor> tensors;
    tensors.reserve(which.size());
    for (size_t i : which) {
      const auto& it = items[i];
      tensors.push_back({it.param.data_ptr<float>(), it.grad.data_ptr(), it.exp_avg.data_ptr<float>(),
                         it.exp_avg_sq.data_ptr<float>(), it.copy.defined() ? it.copy.data_ptr() : nullptr,
                         it.param.numel()});
    }
    ops::cuda::AdamStepArgs args;
    args.lr = static_cast<float>(s.lr);
    args.beta1 = static_cast<float>(s.beta1);
    args.one_minus_beta1 = static_cast<float>(1.0 - s.beta1);
    args.beta2 = static_cast<float>(s.beta2);
    args.one_minus_beta2 = static_cast<float>(1.0 - s.beta2);
    args.eps = static_cast<float>(s.eps);
    args.weight_decay = static_cast<float>(s.weight_decay);
    args.adamw_mode = s.adamw_mode;
    args.bias_correction1 = static_cast<float>(s.bias_correction1);
    args.bias_correction2 = static_cast<float>(s.bias_correction2);
    set_scale(s.grad_scale, args.grad_scale, args.grad_scale_device);
    args.grad_dtype = grad_type;
    args.copy_dtype = copy_type;
    ops::cuda::fused_adam(tensors, args, stream);
  });
  for (const auto& it : items) mark_written(it);
#else
  throw EngineError("fused_adam is not built into this deepspeed-cpp (a build without CUDA)");
#endif
}

torch::Tensor lamb([[maybe_unused]] const std::vector<Item>& items, [[maybe_unused]] const LambScalars& s) {
#if DEEPSPEED_OP_FUSED_LAMB_BUILT
  const auto device = items.front().param.device();
  const c10::cuda::CUDAGuard guard(device);
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  auto coeffs = torch::empty({static_cast<int64_t>(items.size())},
                             torch::TensorOptions().dtype(torch::kFloat64).device(device));
  for_each_kind(items, [&](const std::vector<size_t>& which, ops::cuda::DType grad_type, ops::cuda::DType copy_type) {
    std::vector<ops::cuda::LambTensor> tensors;
    for (size_t i : which) {
      const auto& it = items[i];
      tensors.push_back({it.param.data_ptr<float>(), it.grad.data_ptr(), it.exp_avg.data_ptr<float>(),
                         it.exp_avg_sq.data_ptr<float>(), it.copy.defined() ? it.copy.data_ptr() : nullptr,
                         it.param.numel()});
    }
    ops::cuda::LambStepArgs args;
    args.beta1 = static_cast<float>(s.beta1);
    args.one_minus_beta1 = static_cast<float>(1.0 - s.beta1);
    args.beta2 = static_cast<float>(s.beta2);
    args.one_minus_beta2 = static_cast<float>(1.0 - s.beta2);
    args.eps = static_cast<float>(s.eps);
    args.eps_inside_sqrt = s.eps_inside_sqrt;
    args.weight_decay = static_cast<float>(s.weight_decay);
    args.step_size = s.step_size;
    args.max_coeff = s.max_coeff;
    args.min_coeff = s.min_coeff;
    set_scale(s.grad_scale, args.grad_scale, args.grad_scale_device);
    args.grad_dtype = grad_type;
    args.copy_dtype = copy_type;
    auto workspace = torch::empty({static_cast<int64_t>(ops::cuda::fused_lamb_workspace_bytes(tensors))},
                                  torch::TensorOptions().dtype(torch::kUInt8).device(device));
    auto part = torch::empty({static_cast<int64_t>(which.size())}, coeffs.options());
    ops::cuda::fused_lamb(tensors, args, part.data_ptr<double>(), workspace.data_ptr(), stream);
    if (which.size() == items.size()) {  // one kind, in order: the common case
      coeffs = part;
      return;
    }
    auto index = torch::tensor(std::vector<int64_t>(which.begin(), which.end()),
                               torch::TensorOptions().dtype(torch::kLong)).to(device, /*non_blocking=*/true);
    coeffs.index_copy_(0, index, part);
  });
  for (const auto& it : items) mark_written(it);
  return coeffs;
#else
  throw EngineError("fused_lamb is not built into this deepspeed-cpp (a build without CUDA)");
#endif
}

bool norm_available() { return adam_available() || lamb_available(); }

torch::Tensor squared_norm([[maybe_unused]] const std::vector<torch::Tensor>& tensors) {
#if DEEPSPEED_OP_FUSED_ADAM_BUILT || DEEPSPEED_OP_FUSED_LAMB_BUILT
  std::optional<torch::Device> device;
  for (const auto& t : tensors) {
    if (t.defined()) {
      device = t.device();
      break;
    }
  }
  TORCH_CHECK(device && device->is_cuda(), "fused_cuda_detail::squared_norm needs CUDA tensors");
  const c10::cuda::CUDAGuard guard(*device);
  void* stream = at::cuda::getCurrentCUDAStream().stream();
  auto out = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(*device));
  bool accumulate = false;
  for (const auto type : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    std::vector<const void*> pointers;
    std::vector<int64_t> sizes;
    std::vector<torch::Tensor> keep;  // contiguous copies of strided tensors, alive until launched
    for (const auto& t : tensors) {
      if (!t.defined() || t.numel() == 0 || t.scalar_type() != type) continue;
      TORCH_CHECK(t.device() == *device, "fused_cuda_detail::squared_norm: tensors on several devices");
      keep.push_back(t.contiguous());
      pointers.push_back(keep.back().data_ptr());
      sizes.push_back(t.numel());
    }
    if (pointers.empty()) continue;
    auto workspace = torch::empty({static_cast<int64_t>(ops::cuda::squared_norm_workspace_bytes(sizes))},
                                  torch::TensorOptions().dtype(torch::kUInt8).device(*device));
    ops::cuda::squared_norm(pointers, sizes, dtype_of(type), out.data_ptr<double>(), accumulate,
                            workspace.data_ptr(), stream);
    accumulate = true;
  }
  return out;
#else
  throw EngineError("the fused CUDA ops are not built into this deepspeed-cpp (a build without CUDA)");
#endif
}

}  // namespace deepspeed::fused_cuda_detail
