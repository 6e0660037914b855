// fp16 loss scaling: DeepSpeed's two dynamic algorithms and the static scale (docs/config.md,
// "Mixed precision and loss scaling").
//
// Zero follows deepspeed/runtime/fp16/loss_scaler.py DynamicLossScaler.update_scale; Plain
// follows FP16_Optimizer._update_scale (fused_optimizer.py) and FP16_UnfusedOptimizer's
// (unfused_optimizer.py) of 0.19.6, including the log lines each prints and their number
// formats. The scale is a Python float on both paths at 0.19.6 (the dynamic arguments go
// through validate_positive_finite, which returns float(x)), so Plain prints 65536.0, while
// the Zero lines print int(scale), i.e. 65536.
#include "runtime/step/loss_scaler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include <deepspeed/config.h>
#include <deepspeed/errors.h>
#include <deepspeed/optimizer.h>  // python_repr

namespace deepspeed {
namespace {

constexpr const char* kMinScaleError =
    "Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.";

// Python's str(int(x)) for a finite float: truncated toward zero, every digit (2.0**70 is
// 1180591620717411303424). glibc's %.0f prints an integral double exactly.
std::string python_int(double value) {
  char buffer[400];
  std::snprintf(buffer, sizeof(buffer), "%.0f", std::trunc(value) + 0.0);  // + 0.0: no "-0"
  return buffer;
}

// The Plain path's overflow line, printed by the optimizer wrapper's step() after the update
// (also with a static scale, where both numbers are the same).
std::string plain_overflow_line(bool fused, double previous, double current) {
  return fmt::format("{}Attempted loss scale: {}, reducing to {}",
                     fused ? "Overflow detected. Skipping step. "
                           : "[deepspeed] fp16 dynamic loss scale overflow! Skipping step. ",
                     python_repr(previous), python_repr(current));
}

void check_options(const LossScalerOptions& o) {
  if (!o.dynamic) {
    if (!(std::isfinite(o.initial_scale) && o.initial_scale > 0)) {
      throw ConfigError("fp16.loss_scale", "must be a finite number > 0, got " + python_repr(o.initial_scale));
    }
    return;
  }
  // DeepSpeed validates the same values (validate_positive_finite / validate_positive_int on
  // dynamic_loss_args) when it builds the scaler; the config reader checks window and minimum.
  const char* when = " when dynamic loss scaling is enabled (loss_scale=0)";
  if (!(std::isfinite(o.initial_scale) && o.initial_scale > 0)) {
    throw ConfigError("fp16.initial_scale_power",
                      fmt::format("2^initial_scale_power must be a finite number > 0, got {}",
                                  python_repr(o.initial_scale)));
  }
  if (o.scale_window <= 0) {
    throw ConfigError("fp16.loss_scale_window", fmt::format("must be > 0{}, got {}", when, o.scale_window));
  }
  if (o.hysteresis <= 0) {
    throw ConfigError("fp16.hysteresis", fmt::format("must be > 0{}, got {}", when, o.hysteresis));
  }
  if (!(std::isfinite(o.min_scale) && o.min_scale > 0)) {
    throw ConfigError("fp16.min_loss_scale", fmt::format("must be > 0{}, got {}", when, python_repr(o.min_scale)));
  }
  if (!(std::isfinite(o.scale_factor) && o.scale_factor > 0)) {
    throw ConfigError("fp16", "loss scale factor must be a finite number > 0, got " + python_repr(o.scale_factor));
  }
}

// Typed reads of a saved state; every problem names the key and `where`.
class StateReader {
 public:
  StateReader(const nlohmann::json& state, const std::string& where) : state_(state), where_(where) {
    if (!state.is_object()) {
      throw CheckpointError(fmt::format("{}: expected an object, got {}", where, state.type_name()));
    }
  }
  double number(const char* key) const {
    const auto& v = find(key);
    if (!v.is_number()) fail(key, "a number", v);
    return v.get<double>();
  }
  int64_t integer(const char* key) const {
    const auto& v = find(key);
    if (!v.is_number_integer()) fail(key, "an integer", v);
    return v.get<int64_t>();
  }
  bool boolean(const char* key) const {
    const auto& v = find(key);
    if (!v.is_boolean()) fail(key, "a boolean", v);
    return v.get<bool>();
  }
  [[noreturn]] void invalid(const char* key, const std::string& what) const {
    throw CheckpointError(fmt::format("{}: '{}' {}", where_, key, what));
  }

 private:
  const nlohmann::json& find(const char* key) const {
    const auto it = state_.find(key);
    if (it == state_.end()) throw CheckpointError(fmt::format("{}: missing '{}'", where_, key));
    return *it;
  }
  [[noreturn]] void fail(const char* key, const char* expected, const nlohmann::json& v) const {
    invalid(key, fmt::format("must be {}, got {} {}", expected, v.type_name(), v.dump()));
  }

  const nlohmann::json& state_;
  const std::string& where_;
};

}  // namespace

LossScalerOptions loss_scaler_options(const DeepSpeedConfig& config, LossScaleAlgorithm algorithm, bool fused) {
  const Fp16Config& fp16 = config.fp16;
  LossScalerOptions o;
  o.algorithm = algorithm;
  o.fused = fused;
  o.scale_window = fp16.loss_scale_window;
  o.hysteresis = fp16.hysteresis;
  o.consecutive_hysteresis = fp16.consecutive_hysteresis;
  o.min_scale = fp16.min_loss_scale;
  if (!fp16.enabled) {  // bf16 and fp32: CreateLossScaler's LossScaler(1.0)
    o.dynamic = false;
    o.initial_scale = 1.0;
  } else if (fp16.loss_scale == 0.0) {
    o.dynamic = true;
    // 2**initial_scale_power; clamped so that ldexp's int exponent cannot wrap (±2000 is
    // already inf or 0, which the constructor rejects).
    const auto power = static_cast<int>(std::clamp<int64_t>(fp16.initial_scale_power, -2000, 2000));
    o.initial_scale = std::ldexp(1.0, power);
  } else {
    o.dynamic = false;
    o.initial_scale = fp16.loss_scale;
  }
  return o;
}

LossScaler::LossScaler(LossScalerOptions options)
    : options_(options), cur_scale_(options.initial_scale), cur_hysteresis_(options.hysteresis) {
  check_options(options_);
}

LossScaler::Messages LossScaler::update(bool overflow) {
  Messages m;
  const LossScalerOptions& o = options_;
  const bool plain = o.algorithm == LossScaleAlgorithm::Plain;
  const double previous = cur_scale_;

  if (!o.dynamic) {
    // ZeRO's static LossScaler.update_scale does nothing and logs nothing; the fp16 wrappers
    // log the iteration (their two spellings differ in the colons) and the overflow line.
    if (overflow && plain) {
      const char* colon = o.fused ? ":" : "";
      m.info.push_back(fmt::format("Grad overflow on iteration{} {}", colon, cur_iter_));
      m.info.push_back(fmt::format("Using static loss scale of{} {}", colon, python_repr(cur_scale_)));
      m.skip.push_back(plain_overflow_line(o.fused, previous, cur_scale_));
    }
    ++cur_iter_;
    return m;
  }

  if (overflow) {
    if (!plain && !(o.hysteresis == 1 || cur_hysteresis_ == 1)) {
      // Zero: this overflow only consumes hysteresis; the scale stays.
      m.skip.push_back(fmt::format(
          "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: {}, but hysteresis is {}. "
          "Reducing hysteresis to {}",
          python_int(cur_scale_), cur_hysteresis_, cur_hysteresis_ - 1));
      --cur_hysteresis_;
    } else {
      // Exact comparison, as DeepSpeed's: a minimum that halving skips over is clamped to
      // first (max below), and only the next overflow raises.
      if (!plain && cur_scale_ == o.min_scale) throw EngineError(kMinScaleError);
      const double next = std::max(cur_scale_ / o.scale_factor, o.min_scale);
      if (plain) {
        // FP16_Optimizer writes "\nGrad overflow on iteration N" (a leading newline, no colon),
        // FP16_UnfusedOptimizer "Grad overflow on iteration: N"; the newline is left out.
        m.info.push_back(fmt::format("Grad overflow on iteration{} {}", o.fused ? "" : ":", cur_iter_));
        m.info.push_back(
            fmt::format("Reducing dynamic loss scale from {} to {}", python_repr(previous), python_repr(next)));
        m.skip.push_back(plain_overflow_line(o.fused, previous, next));
      } else {
        m.skip.push_back(fmt::format("[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: {}, "
                                        "reducing to {}",
                                        python_int(cur_scale_), python_int(next)));
      }
      cur_scale_ = next;
    }
    last_overflow_iter_ = cur_iter_;
  } else {
    if (!plain && o.consecutive_hysteresis) {
      m.info.push_back(fmt::format("Consecutive hysteresis is enabled. Restoring hysteresis to {}", o.hysteresis));
      cur_hysteresis_ = o.hysteresis;
    }
    // W clean updates after the last overflow (or the start), the next clean one grows the
    // scale: with no overflow ever, the update where cur_iter == W is the first.
    const int64_t stable_interval = cur_iter_ - last_overflow_iter_ - 1;
    if (stable_interval > 0 && stable_interval % o.scale_window == 0) {
      if (!plain && !o.consecutive_hysteresis) cur_hysteresis_ = o.hysteresis;
      cur_scale_ *= o.scale_factor;
      if (plain) {  // DynamicLossScaler logs nothing when it grows
        m.info.push_back(fmt::format("No Grad overflow for {} iterations", o.scale_window));
        m.info.push_back(
            fmt::format("Increasing dynamic loss scale from {} to {}", python_repr(previous), python_repr(cur_scale_)));
      }
    }
  }
  ++cur_iter_;
  return m;
}

nlohmann::json LossScaler::state_dict() const {
  return {
      {"cur_scale", cur_scale_},
      {"cur_iter", cur_iter_},
      {"last_overflow_iter", last_overflow_iter_},
      {"scale_factor", options_.scale_factor},
      {"scale_window", options_.scale_window},
      {"min_scale", options_.min_scale},
      {"delayed_shift", options_.hysteresis},
      {"cur_hysteresis", cur_hysteresis_},
      {"consecutive_hysteresis", options_.consecutive_hysteresis},
      {"dynamic", options_.dynamic},
  };
}

void LossScaler::load_state_dict(const nlohmann::json& state, const std::string& where) {
  // Read and check everything before changing anything, so a bad state leaves this scaler as
  // it was.
  const StateReader r(state, where);
  const double cur_scale = r.number("cur_scale");
  const int64_t cur_iter = r.integer("cur_iter");
  const int64_t last_overflow_iter = r.integer("last_overflow_iter");
  const double scale_factor = r.number("scale_factor");
  const int64_t scale_window = r.integer("scale_window");
  const double min_scale = r.number("min_scale");
  const int64_t delayed_shift = r.integer("delayed_shift");
  const int64_t cur_hysteresis = r.integer("cur_hysteresis");
  const bool consecutive_hysteresis = r.boolean("consecutive_hysteresis");
  const bool dynamic = r.boolean("dynamic");

  if (!(std::isfinite(cur_scale) && cur_scale > 0)) r.invalid("cur_scale", "must be a finite number > 0");
  if (cur_iter < 0) r.invalid("cur_iter", "must be >= 0");
  if (dynamic) {
    if (!(std::isfinite(scale_factor) && scale_factor > 0)) r.invalid("scale_factor", "must be a finite number > 0");
    if (scale_window <= 0) r.invalid("scale_window", "must be > 0");
    if (!(std::isfinite(min_scale) && min_scale > 0)) r.invalid("min_scale", "must be a finite number > 0");
    if (delayed_shift <= 0) r.invalid("delayed_shift", "must be > 0");
  }

  cur_scale_ = cur_scale;
  cur_iter_ = cur_iter;
  cur_hysteresis_ = cur_hysteresis;
  options_.dynamic = dynamic;
  if (dynamic) {
    last_overflow_iter_ = last_overflow_iter;
    options_.scale_factor = scale_factor;
    options_.scale_window = scale_window;
  }
  // ZeRO pickles the whole DynamicLossScaler, settings included; FP16_Optimizer restores only
  // the scale, the counters, scale_factor and scale_window, and keeps the rest from the config.
  if (options_.algorithm == LossScaleAlgorithm::Zero) {
    last_overflow_iter_ = last_overflow_iter;
    options_.min_scale = min_scale;
    options_.hysteresis = delayed_shift;
    options_.consecutive_hysteresis = consecutive_hysteresis;
  }
}

}  // namespace deepspeed
