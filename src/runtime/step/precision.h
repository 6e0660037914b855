// Precision decisions shared by the optimizer wrappers: which dtype the model, the gradient
// communication and the master weights use, which (stage, dtype) combinations DeepSpeed
// supports (docs/config.md, "What runs in which precision"), and the arithmetic of overflow
// checks, norms and clipping.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include <deepspeed/config.h>

#include "runtime/step/gradient_reducer.h"

namespace deepspeed {

// fp16 -> Half, bf16 -> BFloat16, else Float.
torch::ScalarType model_dtype(const DeepSpeedConfig& config);
// communication_data_type, or the model's dtype when unset.
torch::ScalarType communication_dtype(const DeepSpeedConfig& config);
// Throws ConfigError for what DeepSpeed refuses at initialize (amp, a stage-0 mix of model and
// gradient-accumulation dtypes, ZeRO with an untested optimizer, ...). `optimizer_name` is
// Optimizer::name() ("" without an optimizer); `client_optimizer`: the user built it.
void check_precision_and_zero(const DeepSpeedConfig& config, const std::string& optimizer_name,
                              bool client_optimizer);

// fp16 on a CPU device is refused (ConfigError on "fp16.enabled", with what to use instead)
// where this LibTorch has no half-precision matrix product on the CPU (LibTorch 1.13), as
// DeepSpeed refuses fp16 on an accelerator without fp16 support. The environment variable
// kAllowCpuFp16Env=1 lets a model through whose operations all have CPU half kernels
// (element-wise ones).
inline constexpr const char* kAllowCpuFp16Env = "DS_ALLOW_CPU_FP16";
void check_fp16_on_device(const DeepSpeedConfig& config, torch::Device device);

// The reduction settings of the config (averaging, prescale, predivide factor, dtype).
GradientReducer::Options reducer_options(const DeepSpeedConfig& config);
// Elements per gradient bucket: zero_optimization.reduce_bucket_size for ZeRO; for stage 0
// PyTorch DDP's 25 MiB unless the config sets reduce_bucket_size itself.
int64_t bucket_elements(const DeepSpeedConfig& config, torch::ScalarType comm_dtype);

// True when any element of any defined tensor is inf or nan (one device sync). The check sums
// in `accumulate`: with fp32 tensors, kFloat64 keeps a sum of large finite values from
// overflowing into a false alarm (fp16/bf16 values cannot overflow an fp32 sum that way).
bool has_inf_or_nan(const std::vector<torch::Tensor>& tensors, torch::ScalarType accumulate = torch::kFloat32);
// Sum of squares of every defined tensor, as a 0-dim tensor on `device`: on the CPU as fp32,
// contiguous fp32 tensors summed in parallel in fixed blocks (fp32 within a block, fp64
// across blocks: independent of the thread count), others by one norm per tensor; on a GPU
// with the fused ops, in one multi-tensor pass (fp32 per chunk, fp64 in all), as float64,
// without synchronising.
torch::Tensor squared_norm(const std::vector<torch::Tensor>& tensors, torch::Device device);
// DeepSpeed's unscale-and-clip divisor, one multiply for both: with
// clip = (scaled_norm / loss_scale + 1e-6) / gradient_clipping, it is loss_scale * clip when
// gradient_clipping > 0 and clip > 1, else loss_scale.
double unscale_and_clip_divisor(double scaled_norm, double loss_scale, double gradient_clipping);
// The same on the device: 1 / unscale_and_clip_divisor(sqrt(squared_norm), ...) as a 0-dim
// float64 tensor beside `squared_norm`, computed with the same float64 operations (so equal
// to the host's result) but without reading the norm back: the optimizer multiplies the
// gradients by it where they are.
torch::Tensor unscale_and_clip_factor(const torch::Tensor& squared_norm, double loss_scale, double gradient_clipping);

}  // namespace deepspeed
