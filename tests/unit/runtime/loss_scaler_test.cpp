// fp16 loss scaling: DeepSpeed's dynamic loss scale tests
// (tests/unit/runtime/half_precision/test_dynamic_loss_scale.py for the fp16 wrappers,
// test_zero_optim_overflow.py for ZeRO) ported as step sequences, plus hysteresis,
// consecutive_hysteresis, growth timing, the minimum, static scales, log lines and state.
//
// Every expected value is worked out by hand from DeepSpeed's Python
// (DynamicLossScaler.update_scale, FP16_Optimizer/FP16_UnfusedOptimizer._update_scale);
// the derivation is in the comment beside it.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include <deepspeed/config.h>
#include <deepspeed/errors.h>

#include "runtime/step/loss_scaler.h"

using deepspeed::LossScaleAlgorithm;
using deepspeed::LossScaler;
using deepspeed::LossScalerOptions;

namespace {

using Lines = std::vector<std::string>;
using Scales = std::vector<double>;

constexpr LossScaleAlgorithm kZero = LossScaleAlgorithm::Zero;
constexpr LossScaleAlgorithm kPlain = LossScaleAlgorithm::Plain;

// An "fp16" section with dynamic scaling, as DeepSpeed's tests write it.
deepspeed::Fp16Config fp16(int64_t initial_scale_power, int64_t loss_scale_window, int64_t hysteresis = 2,
                           double min_loss_scale = 1.0, bool consecutive_hysteresis = false) {
  deepspeed::Fp16Config c;
  c.enabled = true;
  c.loss_scale = 0.0;
  c.initial_scale_power = initial_scale_power;
  c.loss_scale_window = loss_scale_window;
  c.hysteresis = hysteresis;
  c.min_loss_scale = min_loss_scale;
  c.consecutive_hysteresis = consecutive_hysteresis;
  return c;
}

deepspeed::Fp16Config fp16_static(double loss_scale) {
  deepspeed::Fp16Config c;
  c.enabled = true;
  c.loss_scale = loss_scale;
  return c;
}

LossScalerOptions options(const deepspeed::Fp16Config& f, LossScaleAlgorithm algorithm, bool fused = true) {
  deepspeed::DeepSpeedConfig config;
  config.fp16 = f;
  return deepspeed::loss_scaler_options(config, algorithm, fused);
}

LossScaler make(const deepspeed::Fp16Config& f, LossScaleAlgorithm algorithm, bool fused = true) {
  return LossScaler(options(f, algorithm, fused));
}

// Steps as DeepSpeed's tests feed them: 'o' = the gradients overflowed (inf/nan), '.' = they
// are finite. Returns the scale after each update.
Scales run(LossScaler& scaler, std::string_view steps) {
  Scales scales;
  for (char c : steps) {
    scaler.update(c == 'o');
    scales.push_back(scaler.scale());
  }
  return scales;
}

const char* name(LossScaleAlgorithm a) { return a == kZero ? "Zero" : "Plain"; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// loss_scaler_options

TEST(LossScalerOptions, Fp16DefaultsAreDynamicStartingAt65536) {
  deepspeed::DeepSpeedConfig config;
  config.fp16.enabled = true;  // loss_scale 0, initial_scale_power 16, window 1000, hysteresis 2, min 1
  const LossScalerOptions o = deepspeed::loss_scaler_options(config, kZero);
  EXPECT_TRUE(o.dynamic);
  EXPECT_EQ(o.initial_scale, 65536.0);
  EXPECT_EQ(o.scale_window, 1000);
  EXPECT_EQ(o.hysteresis, 2);
  EXPECT_FALSE(o.consecutive_hysteresis);
  EXPECT_EQ(o.min_scale, 1.0);
  EXPECT_EQ(o.scale_factor, 2.0);
  EXPECT_EQ(o.algorithm, kZero);

  const LossScalerOptions p = deepspeed::loss_scaler_options(config, kPlain, /*fused=*/false);
  EXPECT_EQ(p.algorithm, kPlain);
  EXPECT_FALSE(p.fused);
  EXPECT_EQ(LossScaler(p).scale(), 65536.0);
}

TEST(LossScalerOptions, Fp16SectionValuesAreUsed) {
  const LossScalerOptions o = options(fp16(8, 2, 3, 4.0, true), kZero);
  EXPECT_TRUE(o.dynamic);
  EXPECT_EQ(o.initial_scale, 256.0);  // 2^8
  EXPECT_EQ(o.scale_window, 2);
  EXPECT_EQ(o.hysteresis, 3);
  EXPECT_EQ(o.min_scale, 4.0);
  EXPECT_TRUE(o.consecutive_hysteresis);
  // initial_scale_power may be negative: 2**-2 == 0.25.
  EXPECT_EQ(options(fp16(-2, 10), kPlain).initial_scale, 0.25);
}

TEST(LossScalerOptions, PositiveLossScaleIsStatic) {
  const LossScalerOptions o = options(fp16_static(128.0), kPlain);
  EXPECT_FALSE(o.dynamic);
  EXPECT_EQ(o.initial_scale, 128.0);
}

TEST(LossScalerOptions, Bf16AndFp32UseAStaticScaleOfOne) {
  deepspeed::DeepSpeedConfig bf16;
  bf16.bf16.enabled = true;
  deepspeed::DeepSpeedConfig fp32;  // neither enabled; fp16.loss_scale is still its default 0
  for (const auto* config : {&bf16, &fp32}) {
    for (auto algorithm : {kZero, kPlain}) {
      const LossScalerOptions o = deepspeed::loss_scaler_options(*config, algorithm);
      EXPECT_FALSE(o.dynamic);
      EXPECT_EQ(o.initial_scale, 1.0);
      LossScaler scaler(o);
      EXPECT_EQ(run(scaler, "o.o"), (Scales{1.0, 1.0, 1.0}));
    }
  }
  // fp16 keys given but fp16 off: still 1.0 (CreateLossScaler uses the scale only for half).
  deepspeed::DeepSpeedConfig off;
  off.fp16 = fp16_static(128.0);
  off.fp16.enabled = false;
  EXPECT_EQ(deepspeed::loss_scaler_options(off, kZero).initial_scale, 1.0);
}

TEST(LossScalerOptions, InvalidDynamicSettingsAreConfigErrors) {
  // DeepSpeed rejects these when it builds the scaler (validate_positive_int/_finite on
  // dynamic_loss_args); the key path says which fp16 key to fix.
  auto path_of = [](const deepspeed::Fp16Config& f) -> std::string {
    try {
      make(f, kZero);
    } catch (const deepspeed::ConfigError& e) {
      return e.path();
    }
    return "no error";
  };
  EXPECT_EQ(path_of(fp16(16, 1000, 0)), "fp16.hysteresis");
  EXPECT_EQ(path_of(fp16(16, 0)), "fp16.loss_scale_window");
  EXPECT_EQ(path_of(fp16(16, 1000, 2, 0.0)), "fp16.min_loss_scale");
  EXPECT_EQ(path_of(fp16(5000, 1000)), "fp16.initial_scale_power");  // 2^5000 is not a finite scale
  // A static scale does not use them, and DeepSpeed does not check them then.
  deepspeed::Fp16Config unused = fp16_static(8.0);
  unused.hysteresis = 0;
  unused.loss_scale_window = 0;
  EXPECT_EQ(path_of(unused), "no error");
}

// ---------------------------------------------------------------------------------------------
// DeepSpeed's tests, both algorithms

// TestFused/TestUnfused/TestZeROFloat16.test_no_overflow: initial_scale_power 8, window 2,
// 10 finite steps; after step i the scale is the expected one and cur_iter == i, and the
// expectation doubles whenever cur_iter % 2 == 0. Update k (cur_iter k before it) doubles
// when stable = k - (-1) - 1 = k is > 0 and even, i.e. updates 2, 4, 6, 8 (the 3rd, 5th, ...).
TEST(LossScaler, DeepSpeedNoOverflow) {
  for (auto algorithm : {kZero, kPlain}) {
    SCOPED_TRACE(name(algorithm));
    LossScaler scaler = make(fp16(8, 2), algorithm);
    ASSERT_TRUE(scaler.dynamic());
    ASSERT_EQ(scaler.scale(), 256.0);
    ASSERT_EQ(scaler.options().scale_window, 2);
    EXPECT_EQ(run(scaler, ".........."),
              (Scales{256, 256, 512, 512, 1024, 1024, 2048, 2048, 4096, 4096}));
    EXPECT_EQ(scaler.cur_iter(), 10);
    EXPECT_EQ(scaler.last_overflow_iter(), -1);
  }
}

// TestFused.test_all_overflow: power 4, window 2, hysteresis 1, min 1; eight overflows,
// expected = max(expected / 2, 1): 8, 4, 2, 1, 1, 1, 1, 1. FP16_Optimizer clamps at the
// minimum and never raises.
TEST(LossScaler, DeepSpeedAllOverflowPlainClampsAtTheMinimum) {
  LossScaler fused = make(fp16(4, 2, 1), kPlain, /*fused=*/true);
  EXPECT_EQ(run(fused, "oooooooo"), (Scales{8, 4, 2, 1, 1, 1, 1, 1}));
  EXPECT_EQ(fused.cur_iter(), 8);
  EXPECT_EQ(fused.last_overflow_iter(), 7);

  // TestUnfused.test_all_overflow: the same with min_loss_scale 2: 8, 4, 2, 2, ...
  LossScaler unfused = make(fp16(4, 2, 1, 2.0), kPlain, /*fused=*/false);
  EXPECT_EQ(run(unfused, "oooooooo"), (Scales{8, 4, 2, 2, 2, 2, 2, 2}));
}

// TestZeROFloat16.test_all_overflow: eight overflows, initial_scale_power 8 (= their count),
// hysteresis 1: 128, 64, ..., 2, 1 -- the minimum is reached exactly at the last one. One more
// overflow finds cur_scale == min_scale and DynamicLossScaler raises, before touching any state.
TEST(LossScaler, DeepSpeedAllOverflowZeroRaisesAtTheMinimum) {
  LossScaler scaler = make(fp16(8, 2, 1), kZero);
  EXPECT_EQ(run(scaler, "oooooooo"), (Scales{128, 64, 32, 16, 8, 4, 2, 1}));
  EXPECT_EQ(scaler.cur_iter(), 8);

  try {
    scaler.update(true);
    FAIL() << "no error at the minimum scale";
  } catch (const deepspeed::EngineError& e) {
    EXPECT_STREQ(e.what(), "Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.");
  }
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_EQ(scaler.cur_iter(), 8);
  EXPECT_EQ(scaler.last_overflow_iter(), 7);

  // The fp16 wrappers' test configuration (power 4) under ZeRO: 8, 4, 2, 1, then the error.
  LossScaler small = make(fp16(4, 2, 1), kZero);
  EXPECT_EQ(run(small, "oooo"), (Scales{8, 4, 2, 1}));
  EXPECT_THROW(small.update(true), deepspeed::EngineError);
  // A finite step is still fine at the minimum.
  EXPECT_NO_THROW(small.update(false));
}

// test_some_overflow (all three classes): power 8, window 2, hysteresis 1.
//   two overflows (updates 0, 1): 256 -> 128 -> 64, last_overflow_iter 1, cur_iter 2;
//   window + 1 = 3 finite steps: update 2: stable 0; 3: stable 1; 4: stable 2 -> 128; cur_iter 5;
//   one overflow: 64, cur_iter 6.
TEST(LossScaler, DeepSpeedSomeOverflow) {
  for (auto algorithm : {kZero, kPlain}) {
    SCOPED_TRACE(name(algorithm));
    LossScaler scaler = make(fp16(8, 2, 1), algorithm);
    EXPECT_EQ(run(scaler, "oo"), (Scales{128, 64}));
    EXPECT_EQ(scaler.cur_iter(), 2);
    EXPECT_EQ(run(scaler, "..."), (Scales{64, 64, 128}));
    EXPECT_EQ(scaler.cur_iter(), 5);
    EXPECT_EQ(run(scaler, "o"), (Scales{64}));
    EXPECT_EQ(scaler.cur_iter(), 6);
    EXPECT_EQ(scaler.last_overflow_iter(), 5);
  }
}

// ---------------------------------------------------------------------------------------------
// Hysteresis: Zero only

// power 8, window 2, hysteresis 2, steps "ooo.....oo":
//   0 o: cur_hyst 2 -> 1, scale stays 256          5 .: stable 5-2-1 = 2 -> 128, cur_hyst = 2
//   1 o: cur_hyst == 1 -> 128, last 1              6 .: stable 3
//   2 o: cur_hyst still 1 -> 64, last 2            7 .: stable 4 -> 256, cur_hyst = 2
//   3 .: stable 0      4 .: stable 1               8 o: cur_hyst 2 -> 1, 256      9 o: -> 128
TEST(LossScaler, ZeroHysteresisAbsorbsOverflowsUntilTheScaleGrows) {
  LossScaler scaler = make(fp16(8, 2, 2), kZero);
  std::vector<int64_t> hysteresis;
  Scales scales;
  for (char c : std::string_view("ooo.....oo")) {
    scaler.update(c == 'o');
    scales.push_back(scaler.scale());
    hysteresis.push_back(scaler.cur_hysteresis());
  }
  EXPECT_EQ(scales, (Scales{256, 128, 64, 64, 64, 128, 128, 256, 256, 128}));
  EXPECT_EQ(hysteresis, (std::vector<int64_t>{1, 1, 1, 1, 1, 2, 2, 2, 1, 1}));
}

// The same steps without hysteresis (FP16_Optimizer ignores it):
//   0-2 o: 128, 64, 32 (last 2); 3 .: stable 0; 4: 1; 5: 2 -> 64; 6: 3; 7: 4 -> 128; 8, 9 o: 64, 32.
TEST(LossScaler, PlainIgnoresHysteresis) {
  for (bool fused : {true, false}) {
    LossScaler scaler = make(fp16(8, 2, 2), kPlain, fused);
    EXPECT_EQ(run(scaler, "ooo.....oo"), (Scales{128, 64, 32, 32, 32, 64, 64, 128, 64, 32}));
  }
}

// power 8, window 1000 (no growth here), hysteresis 2, alternating "o.o.o.o.oo".
TEST(LossScaler, ConsecutiveHysteresisRefillsOnEveryFiniteStep) {
  // consecutive: each '.' restores cur_hyst to 2, so each lone 'o' only takes it to 1 and the
  // scale stays 256; the final "oo" takes it to 1 and then halves: 128.
  LossScaler consecutive = make(fp16(8, 1000, 2, 1.0, true), kZero);
  EXPECT_EQ(run(consecutive, "o.o.o.o.oo"), (Scales{256, 256, 256, 256, 256, 256, 256, 256, 256, 128}));
  EXPECT_EQ(consecutive.cur_hysteresis(), 1);

  // Without it cur_hyst stays 1 after the first 'o' (only growth refills it), so every later
  // 'o' halves: 256, 256, 128, 128, 64, 64, 32, 32, 16, 8.
  LossScaler plain_hysteresis = make(fp16(8, 1000, 2, 1.0, false), kZero);
  EXPECT_EQ(run(plain_hysteresis, "o.o.o.o.oo"), (Scales{256, 256, 128, 128, 64, 64, 32, 32, 16, 8}));

  // The Plain algorithm ignores both settings: every 'o' halves.
  LossScaler plain = make(fp16(8, 1000, 2, 1.0, true), kPlain);
  EXPECT_EQ(run(plain, "o.o.o.o.oo"), (Scales{128, 128, 64, 64, 32, 32, 16, 16, 8, 4}));
}

// ---------------------------------------------------------------------------------------------
// Growth timing and the minimum

// DeepSpeed's defaults (2^16, window 1000), never an overflow: update k has stable = k, so the
// first doubling is update 1000 (the 1001st step, cur_iter == W before it), then every 1000.
TEST(LossScaler, FirstGrowthIsOnTheUpdateWhereCurIterEqualsTheWindow) {
  deepspeed::DeepSpeedConfig config;
  config.fp16.enabled = true;
  for (auto algorithm : {kZero, kPlain}) {
    SCOPED_TRACE(name(algorithm));
    LossScaler scaler(deepspeed::loss_scaler_options(config, algorithm));
    for (int i = 0; i < 1000; ++i) scaler.update(false);
    EXPECT_EQ(scaler.cur_iter(), 1000);
    EXPECT_EQ(scaler.scale(), 65536.0);
    scaler.update(false);
    EXPECT_EQ(scaler.scale(), 131072.0);
    for (int i = 0; i < 999; ++i) scaler.update(false);
    EXPECT_EQ(scaler.scale(), 131072.0);  // cur_iter 2000
    scaler.update(false);
    EXPECT_EQ(scaler.scale(), 262144.0);
  }
}

// After an overflow at update j the next growth is update j + W + 1 (stable = k - j - 1 = W).
TEST(LossScaler, GrowthCountsFromTheLastOverflow) {
  for (auto algorithm : {kZero, kPlain}) {
    SCOPED_TRACE(name(algorithm));
    LossScaler scaler = make(fp16(4, 3, 1), algorithm);  // 16, window 3
    // 0 .: stable 0; 1 .: 1; 2 o: -> 8, last 2; 3 .: 0; 4: 1; 5: 2; 6: 3 -> 16; 7-8: 4, 5; 9: 6 -> 32.
    EXPECT_EQ(run(scaler, "..o......."), (Scales{16, 16, 8, 8, 8, 8, 16, 16, 16, 32}));
  }
}

// min_loss_scale 3 is not a power of two: 16 -> 8 -> 4 -> max(2, 3) = 3; the next overflow finds
// cur_scale == 3 == min: Zero raises (hysteresis 1), Plain stays at 3.
TEST(LossScaler, MinimumThatHalvingSkipsIsClampedTo) {
  LossScaler zero = make(fp16(4, 1000, 1, 3.0), kZero);
  EXPECT_EQ(run(zero, "ooo"), (Scales{8, 4, 3}));
  EXPECT_THROW(zero.update(true), deepspeed::EngineError);

  LossScaler plain = make(fp16(4, 1000, 1, 3.0), kPlain);
  EXPECT_EQ(run(plain, "ooooo"), (Scales{8, 4, 3, 3, 3}));
}

// With hysteresis 2 at the minimum, the first overflow only consumes hysteresis; the error comes
// with the second (DeepSpeed checks the minimum only on the halving branch).
TEST(LossScaler, ZeroAtTheMinimumStillConsumesHysteresisFirst) {
  LossScaler scaler = make(fp16(0, 1000, 2), kZero);  // 2^0 = 1 = min
  scaler.update(true);
  EXPECT_EQ(scaler.cur_hysteresis(), 1);
  EXPECT_THROW(scaler.update(true), deepspeed::EngineError);
}

// ---------------------------------------------------------------------------------------------
// Static scales

TEST(LossScaler, StaticScaleNeverMovesAndNeverRaises) {
  for (auto algorithm : {kZero, kPlain}) {
    SCOPED_TRACE(name(algorithm));
    LossScaler scaler = make(fp16_static(128.0), algorithm);
    EXPECT_FALSE(scaler.dynamic());
    EXPECT_EQ(run(scaler, "oooo....oo"), Scales(10, 128.0));
    EXPECT_EQ(scaler.cur_iter(), 10);
    LossScaler one = make(fp16_static(1.0), algorithm);  // at DeepSpeed's min_loss_scale, no matter
    EXPECT_EQ(run(one, "ooo"), Scales(3, 1.0));
  }
}

// FP16_Optimizer._update_scale, static: logger.info("Grad overflow on iteration: %s", cur_iter),
// logger.info("Using static loss scale of: %s", cur_scale), then step()'s overflow line with
// prev == cur; cur_scale is a float (validate_loss_scale_value returns float(x)).
TEST(LossScalerMessages, StaticPlainFused) {
  LossScaler scaler = make(fp16_static(128.0), kPlain, /*fused=*/true);
  LossScaler::Messages m = scaler.update(true);
  EXPECT_EQ(m.info, (Lines{"Grad overflow on iteration: 0", "Using static loss scale of: 128.0"}));
  EXPECT_EQ(m.skip, (Lines{"Overflow detected. Skipping step. Attempted loss scale: 128.0, reducing to 128.0"}));
  m = scaler.update(false);
  EXPECT_TRUE(m.info.empty());
  EXPECT_TRUE(m.skip.empty());
  m = scaler.update(true);
  EXPECT_EQ(m.info.at(0), "Grad overflow on iteration: 2");
}

// FP16_UnfusedOptimizer spells the static lines without colons.
TEST(LossScalerMessages, StaticPlainUnfused) {
  LossScaler scaler = make(fp16_static(0.5), kPlain, /*fused=*/false);
  const LossScaler::Messages m = scaler.update(true);
  EXPECT_EQ(m.info, (Lines{"Grad overflow on iteration 0", "Using static loss scale of 0.5"}));
  EXPECT_EQ(m.skip, (Lines{"[deepspeed] fp16 dynamic loss scale overflow! Skipping step. Attempted loss "
                              "scale: 0.5, reducing to 0.5"}));
}

// ZeRO's static LossScaler.update_scale is `pass`: nothing logged.
TEST(LossScalerMessages, StaticZeroLogsNothing) {
  LossScaler scaler = make(fp16_static(128.0), kZero);
  const LossScaler::Messages m = scaler.update(true);
  EXPECT_TRUE(m.info.empty());
  EXPECT_TRUE(m.skip.empty());
}

// ---------------------------------------------------------------------------------------------
// Dynamic log lines

// DynamicLossScaler: f"... Attempted loss scale: {int(self.cur_scale)}, but hysteresis is
// {self.cur_hysteresis}. Reducing hysteresis to {self.cur_hysteresis-1}", then
// f"... Attempted loss scale: {int(self.cur_scale)}, reducing to {int(next_scale)}".
TEST(LossScalerMessages, ZeroOverflowLines) {
  LossScaler scaler = make(fp16(16, 1000, 2), kZero);
  LossScaler::Messages m = scaler.update(true);
  EXPECT_TRUE(m.info.empty());
  EXPECT_EQ(m.skip, (Lines{"[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, but "
                              "hysteresis is 2. Reducing hysteresis to 1"}));
  m = scaler.update(true);
  EXPECT_TRUE(m.info.empty());
  EXPECT_EQ(m.skip,
            (Lines{"[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768"}));
  m = scaler.update(false);
  EXPECT_TRUE(m.info.empty());
  EXPECT_TRUE(m.skip.empty());
}

// int() of a float prints every digit: int(2.0**70) = 1180591620717411303424, 2**69 =
// 590295810358705651712 (beyond int64).
TEST(LossScalerMessages, ZeroPrintsLargeScalesAsPythonInts) {
  LossScaler scaler = make(fp16(70, 1000, 1), kZero);
  const LossScaler::Messages m = scaler.update(true);
  EXPECT_EQ(m.skip, (Lines{"[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: "
                              "1180591620717411303424, reducing to 590295810358705651712"}));
}

// DynamicLossScaler logs nothing when the scale grows; with consecutive_hysteresis it logs
// "Consecutive hysteresis is enabled. Restoring hysteresis to {delayed_shift}" on every finite step.
TEST(LossScalerMessages, ZeroGrowthAndConsecutiveHysteresis) {
  LossScaler grows = make(fp16(16, 1, 2), kZero);  // window 1: update 1 grows (stable 1)
  EXPECT_TRUE(grows.update(false).info.empty());
  const LossScaler::Messages growth = grows.update(false);
  EXPECT_EQ(grows.scale(), 131072.0);
  EXPECT_TRUE(growth.info.empty());
  EXPECT_TRUE(growth.skip.empty());

  LossScaler consecutive = make(fp16(16, 1000, 3, 1.0, true), kZero);
  const LossScaler::Messages m = consecutive.update(false);
  EXPECT_EQ(m.info, (Lines{"Consecutive hysteresis is enabled. Restoring hysteresis to 3"}));
  EXPECT_TRUE(m.skip.empty());
}

// FP16_Optimizer (fused), window 2, 2^16 (a float: 65536.0):
//   update 0, overflow: info "\nGrad overflow on iteration 0" (newline dropped), "Reducing dynamic
//     loss scale from 65536.0 to 32768.0"; step(): "Overflow detected. Skipping step. Attempted
//     loss scale: 65536.0, reducing to 32768.0".
//   updates 1, 2: stable 0, 1: nothing.  update 3: stable 2: "No Grad overflow for 2 iterations",
//     "Increasing dynamic loss scale from 32768.0 to 65536.0".
TEST(LossScalerMessages, PlainFusedLines) {
  LossScaler scaler = make(fp16(16, 2), kPlain, /*fused=*/true);
  LossScaler::Messages m = scaler.update(true);
  EXPECT_EQ(m.info, (Lines{"Grad overflow on iteration 0", "Reducing dynamic loss scale from 65536.0 to 32768.0"}));
  EXPECT_EQ(m.skip, (Lines{"Overflow detected. Skipping step. Attempted loss scale: 65536.0, reducing to 32768.0"}));
  for (int i = 0; i < 2; ++i) {
    m = scaler.update(false);
    EXPECT_TRUE(m.info.empty());
    EXPECT_TRUE(m.skip.empty());
  }
  m = scaler.update(false);
  EXPECT_EQ(m.info,
            (Lines{"No Grad overflow for 2 iterations", "Increasing dynamic loss scale from 32768.0 to 65536.0"}));
  EXPECT_TRUE(m.skip.empty());
}

// FP16_UnfusedOptimizer: "Grad overflow on iteration: 0" (with a colon) and its own overflow line.
TEST(LossScalerMessages, PlainUnfusedLines) {
  LossScaler scaler = make(fp16(16, 2), kPlain, /*fused=*/false);
  const LossScaler::Messages m = scaler.update(true);
  EXPECT_EQ(m.info, (Lines{"Grad overflow on iteration: 0", "Reducing dynamic loss scale from 65536.0 to 32768.0"}));
  EXPECT_EQ(m.skip, (Lines{"[deepspeed] fp16 dynamic loss scale overflow! Skipping step. Attempted loss scale: "
                              "65536.0, reducing to 32768.0"}));
}

// Python's float repr: repr(2.0**60) == '1.152921504606847e+18', repr(2.0**59) ==
// '5.764607523034235e+17'; at the minimum, max(1.0 / 2, 1.0) == 1.0.
TEST(LossScalerMessages, PlainPrintsPythonFloats) {
  LossScaler big = make(fp16(60, 1000), kPlain);
  EXPECT_EQ(big.update(true).skip,
            (Lines{"Overflow detected. Skipping step. Attempted loss scale: 1.152921504606847e+18, reducing to "
                   "5.764607523034235e+17"}));
  LossScaler at_min = make(fp16(0, 1000), kPlain);
  const LossScaler::Messages m = at_min.update(true);
  EXPECT_EQ(m.info.at(1), "Reducing dynamic loss scale from 1.0 to 1.0");
  EXPECT_EQ(m.skip.at(0), "Overflow detected. Skipping step. Attempted loss scale: 1.0, reducing to 1.0");
}

// ---------------------------------------------------------------------------------------------
// State

TEST(LossScalerState, ZeroRoundTripRestoresEverything) {
  LossScaler scaler = make(fp16(8, 2, 2), kZero);
  scaler.update(true);  // cur_hyst 2 -> 1, scale 256, last_overflow_iter 0, cur_iter 1
  const nlohmann::json state = scaler.state_dict();
  EXPECT_EQ(state, (nlohmann::json{{"cur_scale", 256.0},
                                   {"cur_iter", 1},
                                   {"last_overflow_iter", 0},
                                   {"scale_factor", 2.0},
                                   {"scale_window", 2},
                                   {"min_scale", 1.0},
                                   {"delayed_shift", 2},
                                   {"cur_hysteresis", 1},
                                   {"consecutive_hysteresis", false},
                                   {"dynamic", true}}));

  // ZeRO pickles the scaler object, so the checkpoint's settings win over the new config's.
  LossScaler restored = make(fp16(16, 1000, 3, 4.0, true), kZero);
  restored.load_state_dict(nlohmann::json::parse(state.dump()));  // through text, as on disk
  EXPECT_EQ(restored.state_dict(), state);
  EXPECT_EQ(restored.options().min_scale, 1.0);
  EXPECT_EQ(restored.options().hysteresis, 2);

  // Both go on identically: o: cur_hyst 1 -> 128 (last 1); .: stable 0; .: 1; .: 2 -> 256.
  EXPECT_EQ(run(scaler, "o..."), (Scales{128, 128, 128, 256}));
  EXPECT_EQ(run(restored, "o..."), (Scales{128, 128, 128, 256}));
}

TEST(LossScalerState, PlainRoundTripKeepsTheConfigsMinimum) {
  LossScaler scaler = make(fp16(8, 2), kPlain);
  run(scaler, "o.");  // 128, last_overflow_iter 0, cur_iter 2
  const nlohmann::json state = scaler.state_dict();

  // FP16_Optimizer.load_state_dict restores cur_scale, cur_iter, last_overflow_iter,
  // scale_factor and scale_window; min_loss_scale stays the new config's (4 here).
  LossScaler restored = make(fp16(16, 1000, 3, 4.0), kPlain);
  restored.load_state_dict(state);
  EXPECT_EQ(restored.scale(), 128.0);
  EXPECT_EQ(restored.cur_iter(), 2);
  EXPECT_EQ(restored.last_overflow_iter(), 0);
  EXPECT_EQ(restored.options().scale_window, 2);
  EXPECT_EQ(restored.options().min_scale, 4.0);
  // .: stable 2-0-1 = 1; .: 2 -> 256; then overflows halve down to the minimum:
  // original (min 1): 128, 64, 32, 16, 8, 4, 2;  restored (min 4): ..., 8, 4, 4.
  EXPECT_EQ(run(scaler, "..ooooooo"), (Scales{128, 256, 128, 64, 32, 16, 8, 4, 2}));
  EXPECT_EQ(run(restored, "..ooooooo"), (Scales{128, 256, 128, 64, 32, 16, 8, 4, 4}));
}

TEST(LossScalerState, StaticRoundTrip) {
  LossScaler scaler = make(fp16_static(64.0), kPlain);
  run(scaler, "o.");
  LossScaler restored = make(fp16_static(64.0), kPlain);
  restored.load_state_dict(scaler.state_dict());
  EXPECT_FALSE(restored.dynamic());
  EXPECT_EQ(restored.scale(), 64.0);
  EXPECT_EQ(restored.cur_iter(), 2);
}

TEST(LossScalerState, BadStatesAreCheckpointErrorsNamingTheKey) {
  const LossScaler source = make(fp16(8, 2), kZero);
  auto load_error = [](const nlohmann::json& state, const std::string& where = "loss_scaler") -> std::string {
    LossScaler target = make(fp16(16, 1000), kZero);
    try {
      target.load_state_dict(state, where);
    } catch (const deepspeed::CheckpointError& e) {
      // A failed load leaves the scaler as it was.
      EXPECT_EQ(target.scale(), 65536.0);
      EXPECT_EQ(target.cur_iter(), 0);
      return e.what();
    }
    return "no error";
  };

  nlohmann::json missing = source.state_dict();
  missing.erase("cur_scale");
  EXPECT_EQ(load_error(missing), "loss_scaler: missing 'cur_scale'");
  missing = source.state_dict();
  missing.erase("dynamic");
  EXPECT_EQ(load_error(missing, "global_step5/mp_rank_00_model_states.pt: loss_scaler"),
            "global_step5/mp_rank_00_model_states.pt: loss_scaler: missing 'dynamic'");

  nlohmann::json wrong = source.state_dict();
  wrong["cur_iter"] = "3";
  EXPECT_EQ(load_error(wrong), "loss_scaler: 'cur_iter' must be an integer, got string \"3\"");
  wrong = source.state_dict();
  wrong["scale_window"] = 2.5;
  EXPECT_EQ(load_error(wrong), "loss_scaler: 'scale_window' must be an integer, got number 2.5");
  wrong = source.state_dict();
  wrong["consecutive_hysteresis"] = 0;
  EXPECT_EQ(load_error(wrong), "loss_scaler: 'consecutive_hysteresis' must be a boolean, got number 0");
  wrong = source.state_dict();
  wrong["cur_scale"] = 0;
  EXPECT_EQ(load_error(wrong), "loss_scaler: 'cur_scale' must be a finite number > 0");

  EXPECT_EQ(load_error(nlohmann::json::array()), "loss_scaler: expected an object, got array");
}
