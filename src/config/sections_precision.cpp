// fp16, bf16 (legacy "bfloat16"), amp and data_types (docs/config.md, "Mixed precision and
// loss scaling").
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "config/json_values.h"
#include "config/sections.h"

namespace deepspeed::config_detail {
namespace {

// fp16.loss_scale as DeepSpeed's validator takes it: any number, or a string that Python's
// float() reads ("1024", "inf"); bools are rejected; the value must be finite and >= 0.
double read_loss_scale(const nlohmann::json& v, const std::string& path) {
  double scale = 0.0;
  if (v.is_boolean()) throw ConfigError(path, "must be a number, not bool");
  if (v.is_number()) {
    scale = v.get<double>();
  } else if (v.is_string()) {
    const std::string& text = v.get_ref<const std::string&>();
    char* end = nullptr;
    errno = 0;
    scale = std::strtod(text.c_str(), &end);
    while (end && *end == ' ') ++end;
    if (text.empty() || end == text.c_str() || *end != '\0') throw ConfigError(path, "must be a number");
  } else {
    throw ConfigError(path, "must be a number");
  }
  if (!std::isfinite(scale)) throw ConfigError(path, "must be a finite number (not inf/-inf/nan)");
  if (scale < 0) throw ConfigError(path, "must be >= 0 (0 enables dynamic loss scaling)");
  return scale;
}

// DeepSpeed's DtypeEnum spellings of the three training dtypes.
std::string read_dtype(const SectionReader& section, std::string_view key) {
  const std::string path = section.path(key);
  const std::string name = to_string(*section.find(key), path);
  for (const char* s : {"fp32", "float32", "float", "torch.float32"}) {
    if (name == s) return "fp32";
  }
  for (const char* s : {"fp16", "float16", "half", "torch.float16"}) {
    if (name == s) return "fp16";
  }
  for (const char* s : {"bf16", "bfloat16", "bfloat", "torch.bfloat16"}) {
    if (name == s) return "bf16";
  }
  throw ConfigError(path, fmt::format("expected one of fp32, fp16, bf16 (also float32, float, float16, "
                                      "half, bfloat16, torch.float32, ...), got \"{}\"",
                                      name));
}

}  // namespace

Fp16Config read_fp16(const nlohmann::json& value) {
  const SectionReader s(value, "fp16",
                        {"enabled", "auto_cast", "loss_scale", "initial_scale_power", "loss_scale_window",
                         "hysteresis", "consecutive_hysteresis", "min_loss_scale",
                         "fp16_master_weights_and_grads"});
  Fp16Config c;
  c.enabled = s.boolean("enabled", c.enabled);
  c.auto_cast = s.boolean("auto_cast", c.auto_cast);
  if (const auto* v = s.find("loss_scale")) c.loss_scale = read_loss_scale(*v, s.path("loss_scale"));
  c.initial_scale_power = s.integer("initial_scale_power", c.initial_scale_power);
  c.loss_scale_window = s.integer("loss_scale_window", c.loss_scale_window);
  c.hysteresis = s.integer("hysteresis", c.hysteresis);
  c.consecutive_hysteresis = s.boolean("consecutive_hysteresis", c.consecutive_hysteresis);
  // DeepSpeed types min_loss_scale as an int, so 0.5 is rejected as a non-integer.
  c.min_loss_scale = static_cast<double>(s.integer("min_loss_scale", 1));
  c.fp16_master_weights_and_grads = s.boolean("fp16_master_weights_and_grads", c.fp16_master_weights_and_grads);

  // The dynamic scaler divides by the window and clamps at the minimum; DeepSpeed checks
  // both only when they are used (fp16 on, dynamic scaling).
  if (c.enabled && c.loss_scale == 0.0) {
    if (c.loss_scale_window <= 0) {
      throw ConfigError(s.path("loss_scale_window"),
                        "must be > 0 when dynamic loss scaling is enabled (loss_scale=0)");
    }
    if (c.min_loss_scale <= 0) {
      throw ConfigError(s.path("min_loss_scale"),
                        "must be > 0 when dynamic loss scaling is enabled (loss_scale=0)");
    }
  }
  return c;
}

Bf16Config read_bf16(const nlohmann::json& value, const std::string& path) {
  // A common copy-paste from an fp16 block (even in DeepSpeed's own tests); the generic
  // "nearest key" hint would not explain it.
  if (value.is_object()) {
    for (const char* key : {"hysteresis", "initial_scale_power", "loss_scale", "loss_scale_window", "min_loss_scale",
                            "consecutive_hysteresis"}) {
      if (value.contains(key)) {
        throw ConfigError(join_path(path, key),
                          fmt::format("unknown key: loss scaling is fp16-only (bf16 has fp32's exponent range and "
                                      "needs none); remove the loss-scale keys from {}",
                                      path));
      }
    }
  }
  const SectionReader s(value, path,
                        {"enabled", "immediate_grad_update", "check_grad_overflow",
                         "bf16_master_weights_and_grads", "bf16_optimizer_states"});
  Bf16Config c;
  c.enabled = s.boolean("enabled", c.enabled);
  c.immediate_grad_update = s.boolean("immediate_grad_update", c.immediate_grad_update);
  c.check_grad_overflow = s.boolean("check_grad_overflow", c.check_grad_overflow);
  c.bf16_master_weights_and_grads = s.boolean("bf16_master_weights_and_grads", c.bf16_master_weights_and_grads);
  c.bf16_optimizer_states = s.boolean("bf16_optimizer_states", c.bf16_optimizer_states);
  if (c.bf16_optimizer_states && !c.bf16_master_weights_and_grads) {
    throw ConfigError(s.path("bf16_optimizer_states"),
                      fmt::format("requires {}.bf16_master_weights_and_grads to be true", path));
  }
  return c;
}

AmpConfig read_amp(const nlohmann::json& value) {
  AmpConfig c;
  if (value.is_null()) return c;
  if (!value.is_object()) throw_expected("amp", "a JSON object", value);
  // Apex's amp.initialize takes many keyword arguments; DeepSpeed passes every key but
  // "enabled" through unchecked, and so do we.
  for (const auto& [key, v] : value.items()) {
    if (key == "enabled") {
      if (!is_auto(v)) c.enabled = to_bool(v, "amp.enabled");
    } else {
      c.params[key] = v;
    }
  }
  return c;
}

TorchAutocastConfig read_torch_autocast(const nlohmann::json& value) {
  const SectionReader s(value, "torch_autocast", {"enabled", "dtype", "lower_precision_safe_modules"});
  TorchAutocastConfig c;
  c.enabled = s.boolean("enabled", c.enabled);
  if (const auto* v = s.find("dtype"); v && !v->is_null()) {
    c.dtype = read_dtype(s, "dtype");
    if (c.dtype == "fp32") throw ConfigError(s.path("dtype"), "autocast needs a lower precision: fp16 or bf16");
  }
  if (const auto* v = s.find("lower_precision_safe_modules"); v && !v->is_null()) {
    if (!v->is_array()) throw_expected(s.path("lower_precision_safe_modules"), "a list of module class names", *v);
    for (const auto& m : *v) {
      if (!m.is_string()) throw_expected(s.path("lower_precision_safe_modules"), "a list of module class names", m);
      c.lower_precision_safe_modules.push_back(m.get<std::string>());
    }
  }
  return c;
}

DataTypesConfig read_data_types(const nlohmann::json& value) {
  const SectionReader s(value, "data_types", {"grad_accum_dtype", "param_dtype", "buffer_dtype"});
  DataTypesConfig c;
  auto dtype = [&](std::string_view key) -> std::optional<std::string> {
    const auto* v = s.find(key);
    if (!v || v->is_null()) return std::nullopt;
    return read_dtype(s, key);
  };
  c.grad_accum_dtype = dtype("grad_accum_dtype");
  c.param_dtype = dtype("param_dtype");
  c.buffer_dtype = dtype("buffer_dtype");
  return c;
}

}  // namespace deepspeed::config_detail
