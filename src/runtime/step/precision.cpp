#include "runtime/step/precision.h"

#include <algorithm>
#include <vector>

#include "cpu/common/squared_sum.h"
#include "optim/fused_cuda.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <torch/version.h>

#include <deepspeed/async_io.h>
#include <deepspeed/errors.h>

namespace deepspeed {
namespace {

// Stage 0 default: DeepSpeed's is 5e8 elements, i.e. one bucket and no overlap; we use
// PyTorch DDP's 25 MiB so that the all-reduce overlaps backward.
constexpr int64_t kStage0BucketBytes = 25 * 1024 * 1024;

// The config reader already turned every spelling into "fp32", "fp16" or "bf16".
torch::ScalarType dtype_named(const std::string& canonical) {
  if (canonical == "fp16") return torch::kFloat16;
  if (canonical == "bf16") return torch::kBFloat16;
  return torch::kFloat32;
}

const char* python_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat16: return "torch.float16";
    case torch::kBFloat16: return "torch.bfloat16";
    default: return "torch.float32";
  }
}

}  // namespace

torch::ScalarType model_dtype(const DeepSpeedConfig& config) {
  if (config.fp16_enabled()) return torch::kFloat16;
  if (config.bf16_enabled()) return torch::kBFloat16;
  return torch::kFloat32;
}

torch::ScalarType communication_dtype(const DeepSpeedConfig& config) {
  if (config.communication_data_type) return dtype_named(*config.communication_data_type);
  return model_dtype(config);
}

void check_precision_and_zero(const DeepSpeedConfig& config, const std::string& optimizer_name,
                              bool client_optimizer) {
  const int stage = config.zero_stage();
  if (config.amp.enabled) {
    throw ConfigError("amp.enabled",
                      stage > 0 ? "Amp and ZeRO are not currently compatible, please use (legacy) fp16 mode which "
                                  "performs similar to amp opt_mode=O2"
                                : "NVIDIA Apex AMP is a Python library and is not available to C++; use the fp16 or "
                                  "bf16 section instead");
  }
  if (config.torch_autocast.enabled && (config.fp16_enabled() || config.bf16_enabled())) {
    throw ConfigError("torch_autocast.enabled",
                      "cannot be combined with fp16 or bf16: autocast keeps the parameters in fp32 and casts "
                      "inside the forward; use one or the other");
  }
  if (config.fp16_enabled() && config.bf16_enabled()) {
    throw ConfigError("bf16.enabled", "fp16 and bf16 cannot both be enabled");
  }
  const auto model = model_dtype(config);
  const auto accum = config.data_types.grad_accum_dtype
                         ? dtype_named(*config.data_types.grad_accum_dtype)
                         : model;
  if (stage == 0 && accum != model) {
    throw ConfigError("data_types.grad_accum_dtype",
                      fmt::format("unsupported mix of model_dtype={} and grad_accum_dtype={} without ZeRO "
                                  "(use ZeRO stage 1 or above, or the model's dtype)",
                                  python_dtype(model), python_dtype(accum)));
  }
  if (config.zero_optimization.offload_param_enabled()) {
    if (stage != 3) throw ConfigError("zero_optimization.offload_param", "parameter offload needs ZeRO stage 3");
    const auto& offload = *config.zero_optimization.offload_param;
    if (offload.device == "nvme") {  // (the config reader requires its nvme_path)
      if (!ops::async_io_built()) {
        throw ConfigError("zero_optimization.offload_param.device",
                          "nvme needs the async_io op, which this build does not have (ds_report says why; "
                          "install liburing-dev and rebuild)");
      }
    } else if (offload.device != "cpu") {
      throw ConfigError("zero_optimization.offload_param.device",
                        "device '" + offload.device + "' is not available; use \"cpu\" or \"nvme\"");
    }
  }
  if (config.zero_optimization.offload_optimizer_enabled()) {
    const auto& device = config.zero_optimization.offload_optimizer->device;
    if (stage == 0) {
      throw ConfigError("zero_optimization.offload_optimizer", "optimizer offload needs ZeRO stage 1, 2 or 3");
    }
    if (device != "cpu") {
      throw ConfigError("zero_optimization.offload_optimizer.device",
                        "device '" + device + "' is not available in this version of deepspeed-cpp; use \"cpu\"");
    }
  }
  // A 1-bit optimizer the program built itself (the config's are refused when it is read): its
  // compressed all-reduce needs every rank to hold the whole tensors.
  if (stage > 0 && (optimizer_name == "OneBitAdam" || optimizer_name == "ZeroOneAdam" || optimizer_name == "OneBitLamb")) {
    throw ConfigError("zero_optimization.stage", optimizer_name + " is not compatible with ZeRO (stage " +
                                                     std::to_string(stage) + "); it runs at stage 0");
  }
  if (stage > 0 && !optimizer_name.empty() && !config.zero_allow_untested_optimizer) {
    // DeepSpeed's ZERO_SUPPORTED_OPTIMIZERS, by algorithm: Adam/AdamW (torch, Fused, CPU),
    // Adagrad (torch, CPU), Lion (Fused, CPU). A client optimizer counts by what it is.
    const bool supported = optimizer_name == "Adam" || optimizer_name == "AdamW" || optimizer_name == "Adagrad" ||
                           optimizer_name == "Lion";
    if (!supported) {
      throw ConfigError(client_optimizer ? "zero_allow_untested_optimizer" : "optimizer.type",
                        "You are using an untested ZeRO Optimizer (" + optimizer_name +
                            "). Please add <\"zero_allow_untested_optimizer\": true> in the configuration file to "
                            "use it.");
    }
  }
}

void check_fp16_on_device(const DeepSpeedConfig& config, torch::Device device) {
  if (!config.fp16_enabled() || !device.is_cpu()) return;
  if (const char* allow = std::getenv(kAllowCpuFp16Env); allow && std::string(allow) == "1") return;
  std::string refusal;
  try {
    const auto one = torch::ones({1, 1}, torch::TensorOptions().dtype(torch::kFloat16));
    torch::mm(one, one);
    return;  // this LibTorch multiplies half matrices on the CPU
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    refusal = what.substr(0, what.find('\n'));
  }
  throw ConfigError("fp16.enabled",
                    fmt::format("fp16 on the CPU: this LibTorch ({}) has no half-precision matrix product there ({}). Use "
                                "\"bf16\": {{\"enabled\": true}} or fp32 on the CPU, or train on a GPU. A model made "
                                "only of element-wise operations may set {}=1 to train in fp16 anyway",
                                TORCH_VERSION, refusal, kAllowCpuFp16Env));
}

GradientReducer::Options reducer_options(const DeepSpeedConfig& config) {
  GradientReducer::Options o;
  o.comm_dtype = communication_dtype(config);
  o.average = config.gradient_allreduce_op == "mean";
  o.prescale = config.prescale_gradients;
  o.predivide_factor = config.gradient_predivide_factor;
  return o;
}

int64_t bucket_elements(const DeepSpeedConfig& config, torch::ScalarType comm_dtype) {
  const bool set = config.raw.contains("zero_optimization") && config.raw["zero_optimization"].is_object() &&
                   config.raw["zero_optimization"].contains("reduce_bucket_size");
  if (config.zero_stage() > 0 || set) return std::max<int64_t>(1, config.zero_optimization.reduce_bucket_size);
  return kStage0BucketBytes / static_cast<int64_t>(c10::elementSize(comm_dtype));
}

bool has_inf_or_nan(const std::vector<torch::Tensor>& tensors, torch::ScalarType accumulate) {
  torch::NoGradGuard no_grad;
  torch::Tensor any;
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    // sum() of a tensor with an inf or nan is inf or nan; cheaper than isfinite().all().
    auto s = t.sum(accumulate);
    any = any.defined() ? any + s : s;
  }
  return any.defined() && !std::isfinite(any.item<double>());
}

torch::Tensor squared_norm(const std::vector<torch::Tensor>& tensors, torch::Device device) {
  torch::NoGradGuard no_grad;
  // (device may name no index; the tensors' own device decides.)
  if (device.is_cuda() && fused_cuda_detail::norm_available() &&
      std::any_of(tensors.begin(), tensors.end(), [](const torch::Tensor& t) { return t.defined(); }) &&
      std::all_of(tensors.begin(), tensors.end(), [&](const torch::Tensor& t) {
        return !t.defined() || (t.is_cuda() && (!device.has_index() || t.device() == device));
      })) {
    return fused_cuda_detail::squared_norm(tensors);
  }
  auto total = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  // The fp32 CPU tensors', summed apart: ATen's linalg_vector_norm keeps one float
  // accumulator per thread (7 % low at 2^28 elements) and its dtype= overload did not scale
  // with threads, at ZeRO-Offload's partition sizes most of the step (ops/cpu/common/squared_sum.h).
  double host = 0.0;
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    if (t.is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous() && t.layout() == torch::kStrided) {
      host += ops::squared_sum(t.data_ptr<float>(), t.numel());
      continue;
    }
    auto n = at::linalg_vector_norm(t, 2, c10::nullopt, false, torch::kFloat32);
    total += n * n;
  }
  if (host != 0.0) total += host;
  return total;
}

double unscale_and_clip_divisor(double scaled_norm, double loss_scale, double gradient_clipping) {
  double divisor = loss_scale;
  if (gradient_clipping > 0.0) {
    const double clip = (scaled_norm / loss_scale + 1e-6) / gradient_clipping;
    if (clip > 1.0) divisor = clip * loss_scale;
  }
  return divisor;
}

torch::Tensor unscale_and_clip_factor(const torch::Tensor& squared_norm, double loss_scale,
                                      double gradient_clipping) {
  torch::NoGradGuard no_grad;
  const auto scaled_norm = squared_norm.to(torch::kFloat64).sqrt();
  auto divisor = torch::full({}, loss_scale, scaled_norm.options());
  if (gradient_clipping > 0.0) {
    const auto clip = (scaled_norm / loss_scale + 1e-6) / gradient_clipping;
    divisor = torch::where(clip > 1.0, clip * loss_scale, divisor);
  }
  return divisor.reciprocal();
}

}  // namespace deepspeed
