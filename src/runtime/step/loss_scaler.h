// The loss scale of fp16 training (docs/config.md, "Mixed precision and loss scaling"): the
// loss is multiplied by scale() before backward, gradients are divided by it before the step,
// and update() moves it after each boundary step according to whether any gradient
// overflowed (inf/nan).
//
// DeepSpeed has two dynamic algorithms and this class implements both, bit for bit:
// - Zero: ZeRO's DynamicLossScaler, with hysteresis (an overflow first consumes hysteresis,
//   then halves the scale) and an error when the scale is already at its minimum.
// - Plain: the non-ZeRO FP16_Optimizer / FP16_UnfusedOptimizer, no hysteresis, no error.
// A static scale (fp16 loss_scale > 0) never moves; bf16 and fp32 use a static 1.0.
// Overflowed steps are skipped by the caller whatever the algorithm.
//
//   LossScaler scaler(loss_scaler_options(config, stage > 0 ? LossScaleAlgorithm::Zero
//                                                           : LossScaleAlgorithm::Plain));
//   const double scale = scaler.scale();   // backward of loss * scale, then check for inf/nan
//   auto lines = scaler.update(overflow);   // may throw EngineError (Zero, at the minimum)
//   for (auto& l : lines.info) log.debug(l); for (auto& l : lines.skip) log.info(l);
//   if (!overflow) { unscale the gradients; step; }
// On a step where the scale grows, scale() after update() is already the next step's: the
// gradients were made with `scale`. (DeepSpeed divides by the new one there, and by the old
// one for the reported grad norm.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace deepspeed {

struct DeepSpeedConfig;

enum class LossScaleAlgorithm {
  Zero,   // ZeRO stages 1-3 (DynamicLossScaler)
  Plain,  // stage 0 (FP16_Optimizer, FP16_UnfusedOptimizer)
};

struct LossScalerOptions {
  bool dynamic = false;
  double initial_scale = 1.0;      // dynamic: 2^initial_scale_power; static: loss_scale
  int64_t scale_window = 1000;
  int64_t hysteresis = 2;          // Zero algorithm only
  bool consecutive_hysteresis = false;
  double min_scale = 1.0;
  double scale_factor = 2.0;
  LossScaleAlgorithm algorithm = LossScaleAlgorithm::Plain;
  // Plain algorithm: which of DeepSpeed's two overflow lines to print (FP16_Optimizer when
  // the base optimizer is fused, FP16_UnfusedOptimizer otherwise).
  bool fused = true;
};

// fp16 on: dynamic (loss_scale 0, initial scale 2^initial_scale_power) or static (the
// loss_scale) options from the fp16 section; otherwise (bf16, fp32) a static scale of 1.0.
LossScalerOptions loss_scaler_options(const DeepSpeedConfig& config, LossScaleAlgorithm algorithm,
                                      bool fused = true);

class LossScaler {
 public:
  // Throws ConfigError (path "fp16.<key>") for settings DeepSpeed also rejects when it builds
  // its scaler: with dynamic scaling a non-finite initial scale, window <= 0, hysteresis <= 0,
  // minimum <= 0; with a static one a scale <= 0.
  explicit LossScaler(LossScalerOptions options);

  double scale() const { return cur_scale_; }
  bool dynamic() const { return options_.dynamic; }
  const LossScalerOptions& options() const { return options_; }
  int64_t cur_iter() const { return cur_iter_; }
  int64_t last_overflow_iter() const { return last_overflow_iter_; }
  int64_t cur_hysteresis() const { return cur_hysteresis_; }

  // Lines DeepSpeed logs for one update, with its exact text and number formats (Plain
  // prints the scale as a Python float, "65536.0"; Zero as int(scale), "65536"). `skip`
  // holds the per-overflow "Skipping step" line, `info` the verbose rest (DeepSpeed logs the
  // skip line at INFO and the verbose ones only with verbose=True; the engine logs them at
  // INFO and DEBUG). In DeepSpeed's output the info lines of an update come before its skip
  // line. Zero's static scale logs nothing;
  // Zero's growth logs nothing; FP16_Optimizer's leading "\n" before "Grad overflow on
  // iteration N" is left out.
  struct Messages {
    std::vector<std::string> info;
    std::vector<std::string> skip;
  };
  // Records one boundary step (call it once per boundary, before applying the step).
  // Throws EngineError("Current loss scale already at minimum - cannot decrease scale
  // anymore. Exiting run.") when the Zero algorithm must halve a scale already at the
  // minimum; nothing changes then. cur_iter advances with a static scale too. For bf16 and
  // fp32 the scale is 1.0 whatever happens, and the messages (fp16's) are not meant for them.
  Messages update(bool overflow);

  // {cur_scale, cur_iter, last_overflow_iter, scale_factor, scale_window, min_scale,
  //  delayed_shift (= hysteresis), cur_hysteresis, consecutive_hysteresis, dynamic}:
  // DeepSpeed's DynamicLossScaler attribute names.
  nlohmann::json state_dict() const;
  // Restores what state_dict() wrote. Zero restores everything, settings included (ZeRO
  // pickles the scaler object); Plain restores dynamic, cur_scale, cur_iter and, if dynamic,
  // last_overflow_iter, scale_factor and scale_window, and keeps min_scale and the hysteresis
  // settings of its options (FP16_Optimizer.load_state_dict). A missing, mistyped or invalid
  // key is a CheckpointError "<where>: missing 'cur_scale'" / "<where>: 'cur_iter' must be an
  // integer, got string \"3\"", and the scaler is left unchanged.
  void load_state_dict(const nlohmann::json& state, const std::string& where = "loss_scaler");

 private:
  LossScalerOptions options_;
  double cur_scale_;
  int64_t cur_iter_ = 0;
  int64_t last_overflow_iter_ = -1;
  int64_t cur_hysteresis_;
};

}  // namespace deepspeed
