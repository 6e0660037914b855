// optimizer and scheduler (docs/config.md, "Optimizer and scheduler"): the type is checked
// here, the params are kept as JSON for the optimizer and schedule factories, which check them
// against each algorithm.
#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/json_values.h"
#include "config/nearest_key.h"
#include "config/sections.h"

namespace deepspeed {
namespace {

using config_detail::ascii_lower;

// DeepSpeed's optimizer names: the canonical spelling, matched case-insensitively.
constexpr std::array<std::string_view, 12> kDeepSpeedOptimizers = {
    "Adam", "AdamW", "Lamb", "Adagrad", "Lion", "OneBitAdam", "ZeroOneAdam", "OneBitLamb",
    "MuAdam", "MuAdamW", "MuSGD", "Muon"};
// torch.optim classes (PyTorch 2.x), matched exactly as Python's getattr does.
constexpr std::array<std::string_view, 14> kTorchOptimizers = {
    "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "Adafactor", "ASGD",
    "LBFGS", "NAdam", "RAdam", "RMSprop", "Rprop", "SparseAdam"};

constexpr std::array<std::string_view, 5> kDeepSpeedSchedulers = {
    "LRRangeTest", "OneCycle", "WarmupLR", "WarmupDecayLR", "WarmupCosineLR"};
constexpr std::array<std::string_view, 16> kTorchSchedulers = {
    "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "SequentialLR", "CosineAnnealingLR", "ChainedScheduler",
    "ReduceLROnPlateau", "CyclicLR", "CosineAnnealingWarmRestarts", "OneCycleLR",
    "PolynomialLR", "LRScheduler"};

// The canonical spelling of a DeepSpeed optimizer name written in any case.
std::optional<std::string_view> deepspeed_optimizer(std::string_view type) {
  const std::string l = ascii_lower(type);
  for (std::string_view name : kDeepSpeedOptimizers) {
    if (ascii_lower(name) == l) return name;
  }
  return std::nullopt;
}

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& names, std::string_view type) {
  return std::find(names.begin(), names.end(), type) != names.end();
}

// The object's "params", without "auto" values (they mean the algorithm's default).
nlohmann::json read_params(const config_detail::SectionReader& s) {
  const auto* v = s.find("params");
  if (!v || v->is_null()) return nlohmann::json::object();
  if (!v->is_object()) config_detail::throw_expected(s.path("params"), "a JSON object", *v);
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [key, value] : v->items()) {
    if (!config_detail::is_auto(value)) params[key] = value;
  }
  return params;
}

}  // namespace

std::optional<std::string> canonical_optimizer_name(const std::string& type) {
  if (auto ds = deepspeed_optimizer(type)) return ascii_lower(*ds);
  if (contains(kTorchOptimizers, type)) return type;
  return std::nullopt;
}

bool is_known_lr_scheduler(const std::string& type) {
  return contains(kDeepSpeedSchedulers, type) || contains(kTorchSchedulers, type);
}

namespace config_detail {

std::optional<OptimizerConfig> read_optimizer(const nlohmann::json& value, WarningLog& warnings) {
  const SectionReader s(value, "optimizer", {"type", "params", "legacy_fusion"});
  if (!s.has("type")) {
    if (!value.is_null()) warnings.add("optimizer", "has no \"type\"; no optimizer is configured from it");
    return std::nullopt;
  }
  OptimizerConfig c;
  c.type = to_string(*s.find("type"), s.path("type"));
  if (!canonical_optimizer_name(c.type)) {
    std::vector<std::string_view> all(kDeepSpeedOptimizers.begin(), kDeepSpeedOptimizers.end());
    all.insert(all.end(), kTorchOptimizers.begin(), kTorchOptimizers.end());
    throw ConfigError(s.path("type"),
                      fmt::format("{} is not a supported DeepSpeed Optimizer (nearest: \"{}\"). Supported: "
                                  "DeepSpeed's {} in any case, or a torch.optim class spelled exactly: {}",
                                  c.type, nearest_key(c.type, all), fmt::join(kDeepSpeedOptimizers, ", "),
                                  fmt::join(kTorchOptimizers, ", ")));
  }
  // "OnebitAdam" and the like: accepted as DeepSpeed does, but not the documented spelling.
  if (auto ds = deepspeed_optimizer(c.type); ds && c.type != *ds && c.type != ascii_lower(*ds)) {
    warnings.add(s.path("type"), fmt::format("\"{}\" is a legacy spelling of {}", c.type, *ds));
  }
  c.legacy_fusion = s.boolean("legacy_fusion", c.legacy_fusion);

  // Checked on the params as written: even "auto" or 0 is refused, as in DeepSpeed.
  if (const auto* p = s.find("params"); p && p->is_object() && p->contains("max_grad_norm")) {
    throw ConfigError(s.path("params.max_grad_norm"),
                      "'max_grad_norm' is not supported as an optimizer parameter, please switch to using the "
                      "deepspeed parameter 'gradient_clipping' see: "
                      "https://www.deepspeed.ai/docs/config-json/#gradient-clipping for more details");
  }
  c.params = read_params(s);
  return c;
}

std::optional<SchedulerConfig> read_scheduler(const nlohmann::json& value, WarningLog& warnings) {
  const SectionReader s(value, "scheduler", {"type", "params"});
  if (!s.has("type")) {
    if (!value.is_null()) warnings.add("scheduler", "has no \"type\"; no LR schedule is configured from it");
    return std::nullopt;
  }
  SchedulerConfig c;
  c.type = to_string(*s.find("type"), s.path("type"));
  if (!is_known_lr_scheduler(c.type)) {
    std::vector<std::string_view> all(kDeepSpeedSchedulers.begin(), kDeepSpeedSchedulers.end());
    all.insert(all.end(), kTorchSchedulers.begin(), kTorchSchedulers.end());
    throw ConfigError(s.path("type"),
                      fmt::format("DeepSpeed does not recognize LR scheduler {} (nearest: \"{}\"). Supported: "
                                  "DeepSpeed's {}, or a torch.optim.lr_scheduler class: {}",
                                  c.type, nearest_key(c.type, all), fmt::join(kDeepSpeedSchedulers, ", "),
                                  fmt::join(kTorchSchedulers, ", ")));
  }
  c.params = read_params(s);
  return c;
}

}  // namespace config_detail
}  // namespace deepspeed
