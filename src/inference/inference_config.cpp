// The inference config (DeepSpeed's deepspeed/inference/config.py, DeepSpeedInferenceConfig):
// its keys, aliases and defaults, read as the training config's sections are (an unknown key
// names the nearest known one). Keys DeepSpeed has for features deepspeed-cpp does not
// implement (MoE, quantization, Triton, ...) are accepted at their defaults only.
#include <deepspeed/errors.h>
#include <deepspeed/inference.h>

#include <fmt/format.h>

#include "config/json_values.h"
#include "config/section_reader.h"

namespace deepspeed::inference {
namespace {

using config_detail::SectionReader;

// The value of `key` or of its alias (DeepSpeed's Field(alias=...)); both set is an error.
const nlohmann::json* find_either(const SectionReader& s, std::string_view key, std::string_view alias) {
  const auto* a = s.find(key);
  const auto* b = s.find(alias);
  if (a && b) {
    throw ConfigError(s.path(key), fmt::format("set both \"{}\" and its alias \"{}\"; keep one", key, alias));
  }
  return a ? a : b;
}

torch::ScalarType parse_dtype(const nlohmann::json& value, const std::string& path) {
  const std::string name = config_detail::ascii_lower(config_detail::to_string(value, path));
  if (name == "fp16" || name == "float16" || name == "half" || name == "torch.float16") return torch::kHalf;
  if (name == "bf16" || name == "bfloat16" || name == "bfloat" || name == "torch.bfloat16") return torch::kBFloat16;
  if (name == "fp32" || name == "float32" || name == "float" || name == "torch.float32") return torch::kFloat;
  if (name == "int8" || name == "torch.int8") {
    throw ConfigError(path, "int8 inference (weight quantization) is not supported by deepspeed-cpp; use fp16, bf16 or fp32");
  }
  throw ConfigError(path, fmt::format("\"{}\" is not a valid dtype (fp16, bf16, fp32)", name));
}

// DeepSpeed keys of features deepspeed-cpp does not have: accepted when they ask for nothing.
void accept_only_defaults(const SectionReader& s) {
  static const char* const kOffWhenFalse[] = {"use_triton", "triton_autotune", "keep_module_on_host",
                                               "set_empty_params", "transposed_mode"};
  for (const char* key : kOffWhenFalse) {
    if (s.has(key) && s.boolean(key, false)) {
      throw ConfigError(s.path(key), "is not supported by deepspeed-cpp (docs/inference.md); leave it false");
    }
  }
  static const char* const kNullOrEmpty[] = {"zero", "moe", "quant", "injection_policy", "injection_dict",
                                             "injection_policy_tuple", "save_mp_checkpoint_path", "base_dir",
                                             "checkpoint_config", "ckpt_config", "ep_group", "expert_group",
                                             "ep_mp_group", "expert_mp_group", "mpu"};
  for (const char* key : kNullOrEmpty) {
    const auto* v = s.find(key);
    if (!v || v->is_null() || (v->is_object() && v->empty()) || (v->is_string() && v->get<std::string>().empty())) {
      continue;
    }
    if (v->is_boolean() && !v->get<bool>()) continue;  // "moe": false
    throw ConfigError(s.path(key), "is not supported by deepspeed-cpp (docs/inference.md); leave it unset");
  }
  for (const char* key : {"training_mp_size", "ep_size"}) {
    if (s.integer(key, 1, 1) != 1) throw ConfigError(s.path(key), "is not supported by deepspeed-cpp; leave it 1");
  }
  if (const auto* v = find_either(s, "triangular_masking", "tm"); v && !config_detail::to_bool(*v, s.path("triangular_masking"))) {
    throw ConfigError(s.path("triangular_masking"), "only causal (triangular) masking is supported");
  }
}

}  // namespace

InferenceConfig parse_inference_config(const nlohmann::json& json) {
  const SectionReader s(json, "",
                        {"dtype", "tensor_parallel", "tp", "mp_size", "replace_with_kernel_inject", "kernel_inject",
                         "max_out_tokens", "max_tokens", "min_out_tokens", "min_tokens", "enable_cuda_graph",
                         "checkpoint", "config", "args", "return_tuple", "replace_method", "triangular_masking",
                         "tm", "use_triton", "triton_autotune", "keep_module_on_host", "set_empty_params",
                         "transposed_mode", "zero", "moe", "quant", "injection_policy", "injection_dict",
                         "injection_policy_tuple", "save_mp_checkpoint_path", "base_dir", "checkpoint_config",
                         "ckpt_config", "training_mp_size", "ep_size", "ep_group", "expert_group", "ep_mp_group",
                         "expert_mp_group", "mpu", "moe_experts", "moe_type"});
  accept_only_defaults(s);
  InferenceConfig c;
  if (const auto* v = s.find("dtype")) c.dtype = parse_dtype(*v, s.path("dtype"));
  if (const auto* v = find_either(s, "replace_with_kernel_inject", "kernel_inject")) {
    c.replace_with_kernel_inject = config_detail::to_bool(*v, s.path("replace_with_kernel_inject"));
  }
  if (const auto* v = find_either(s, "max_out_tokens", "max_tokens")) {
    c.max_out_tokens = config_detail::to_int(*v, s.path("max_out_tokens"), "a positive integer");
    if (c.max_out_tokens < 1) throw ConfigError(s.path("max_out_tokens"), "expected a positive integer");
  }
  if (const auto* v = find_either(s, "min_out_tokens", "min_tokens")) {
    c.min_out_tokens = config_detail::to_int(*v, s.path("min_out_tokens"), "a positive integer");
    if (c.min_out_tokens < 1) throw ConfigError(s.path("min_out_tokens"), "expected a positive integer");
  }
  if (c.min_out_tokens > c.max_out_tokens) {
    throw ConfigError("min_out_tokens", fmt::format("{} is above max_out_tokens {}", c.min_out_tokens, c.max_out_tokens));
  }
  c.enable_cuda_graph = s.boolean("enable_cuda_graph", false);

  const int64_t mp_size = s.integer("mp_size", 1, 1);
  if (const auto* tp = find_either(s, "tensor_parallel", "tp")) {
    const SectionReader t(*tp, s.path("tensor_parallel"), {"enabled", "tp_size", "tp_grain_size", "mpu", "tp_group"});
    c.tp_size = t.integer("tp_size", 1, 1);
    t.integer("tp_grain_size", 64, 1);
    if (!t.boolean("enabled", true)) c.tp_size = 1;
    for (const char* key : {"mpu", "tp_group"}) {
      if (const auto* g = t.find(key); g && !g->is_null()) {
        throw ConfigError(t.path(key), "is a Python object in DeepSpeed; pass the group to init_inference instead");
      }
    }
    if (s.has("mp_size") && mp_size != c.tp_size) {
      throw ConfigError("mp_size", fmt::format("{} disagrees with tensor_parallel.tp_size {} (mp_size is its old name)",
                                               mp_size, c.tp_size));
    }
  } else {
    c.tp_size = mp_size;
  }

  if (const auto* v = s.find("checkpoint"); v && !v->is_null()) {
    if (v->is_string()) {
      c.checkpoint_dir = v->get<std::string>();
    } else {
      const SectionReader k(*v, s.path("checkpoint"), {"checkpoint_dir", "tag"});
      c.checkpoint_dir = k.optional_string("checkpoint_dir");
      if (!c.checkpoint_dir) throw ConfigError(k.path("checkpoint_dir"), "required: the folder save_checkpoint wrote");
      c.checkpoint_tag = k.optional_string("tag");
    }
    if (c.checkpoint_dir->empty()) throw ConfigError(s.path("checkpoint"), "an empty folder name");
  }

  if (const auto* v = find_either(s, "config", "args"); v && !v->is_null()) {
    const SectionReader m(*v, s.path("config"),
                          {"num_attention_heads", "n_head", "layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps",
                           "rope_theta"});
    const auto* heads = find_either(m, "num_attention_heads", "n_head");
    if (heads) c.num_attention_heads = config_detail::to_int(*heads, m.path("num_attention_heads"), "a positive integer");
    if (c.num_attention_heads < 0 || (heads && c.num_attention_heads == 0)) {
      throw ConfigError(m.path("num_attention_heads"), "expected a positive integer");
    }
    for (const char* key : {"layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps"}) {
      if (m.has(key)) {
        c.norm_eps = m.number(key, 0.0);
        if (*c.norm_eps <= 0) throw ConfigError(m.path(key), "expected a positive number");
      }
    }
    c.rope_theta = m.number("rope_theta", 10000.0);
    if (c.rope_theta <= 0) throw ConfigError(m.path("rope_theta"), "expected a positive number");
  }
  return c;
}

}  // namespace deepspeed::inference
