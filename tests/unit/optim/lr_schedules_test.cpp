// LR schedules against DeepSpeed's formulas (docs/optimizers.md) at k = -1 (construction), 0, 1, N-1,
// N and beyond T, their edge cases, and their config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include "deepspeed/errors.h"
#include "deepspeed/lr_schedules.h"
#include "deepspeed/optimizer.h"

namespace deepspeed {
namespace {

using nlohmann::json;

constexpr double kScheduleTol = 1e-15;
constexpr double kPi = 3.141592653589793;

// An optimizer with `lrs.size()` groups of one tensor each.
std::unique_ptr<Optimizer> optimizer(const std::string& type, std::vector<double> lrs,
                                     const json& params = json::object()) {
  std::vector<ParamGroup> groups;
  for (double lr : lrs) {
    ParamGroup g;
    g.params = {torch::zeros({2})};
    g.lr = lr;
    g.overrides = {"lr"};  // the group's own lr, as a client param group would carry
    groups.push_back(std::move(g));
  }
  return make_optimizer(type, params, std::move(groups));
}

double lr0(const Optimizer& opt) { return opt.param_groups()[0].lr; }

template <class F>
ConfigError schedule_config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a ConfigError";
  return ConfigError("", "");
}

std::string captured_warnings(const std::function<void()>& f) {
  ::testing::internal::CaptureStderr();
  f();
  return ::testing::internal::GetCapturedStderr();
}

// ---------------------------------------------------------------------------- WarmupLR

TEST(WarmupLR, LogWarmupAtEveryPhase) {
  auto opt = optimizer("Adam", {0.05});
  auto s = make_lr_scheduler(
      "WarmupLR", {{"warmup_min_lr", 0.001}, {"warmup_max_lr", 0.01}, {"warmup_num_steps", 10}}, *opt);
  EXPECT_EQ(s->name(), "WarmupLR");
  EXPECT_EQ(s->last_batch_iteration(), -1);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.001);  // the constructor writes min
  const double inv_log = 1.0 / std::log(10.0);
  s->step();  // k = 0: log(1) = 0
  EXPECT_NEAR(lr0(*opt), 0.001, kScheduleTol);
  s->step();  // k = 1
  EXPECT_NEAR(lr0(*opt), 0.001 + 0.009 * inv_log * std::log(2.0), kScheduleTol);
  s->step(9);  // k = N-1: log(10)/log(10) = 1
  EXPECT_NEAR(lr0(*opt), 0.01, kScheduleTol);
  s->step();  // k = N
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.01);
  s->step(1000);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.01);
  ASSERT_EQ(s->get_last_lr().size(), 1u);
  EXPECT_NEAR(s->get_last_lr()[0], 0.01, kScheduleTol);
  EXPECT_EQ(s->state_dict(), json({{"last_batch_iteration", 1000}}));
}

TEST(WarmupLR, LinearAndTheMinimumOfTwoSteps) {
  auto opt = optimizer("Adam", {0.05});
  auto s = make_lr_scheduler("WarmupLR",
                             {{"warmup_min_lr", 0.0}, {"warmup_max_lr", 0.1}, {"warmup_num_steps", 4},
                              {"warmup_type", "linear"}},
                             *opt);
  s->step(1);
  EXPECT_NEAR(lr0(*opt), 0.1 * 1 / 4, kScheduleTol);
  s->step(3);
  EXPECT_NEAR(lr0(*opt), 0.1 * 3 / 4, kScheduleTol);
  s->step(4);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.1);

  // N = max(2, n): one warmup step behaves as two.
  auto one = make_lr_scheduler("WarmupLR", {{"warmup_max_lr", 0.1}, {"warmup_num_steps", 1}}, *opt);
  one->step(0);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.0);
  one->step(1);  // log(2)/log(2)
  EXPECT_NEAR(lr0(*opt), 0.1, kScheduleTol);
  auto one_linear = make_lr_scheduler(
      "WarmupLR", {{"warmup_max_lr", 0.1}, {"warmup_num_steps", 1}, {"warmup_type", "linear"}}, *opt);
  one_linear->step(1);
  EXPECT_NEAR(lr0(*opt), 0.05, kScheduleTol);
}

TEST(WarmupLR, MaxDefaultsToEachGroupsLrAndListsArePerGroup) {
  auto opt = optimizer("Adam", {0.05, 0.2});
  auto s = make_lr_scheduler("WarmupLR", {{"warmup_num_steps", 10}}, *opt);
  EXPECT_EQ(get_lr(*opt), (std::vector<double>{0.0, 0.0}));
  s->step(10);
  EXPECT_EQ(get_lr(*opt), (std::vector<double>{0.05, 0.2}));

  auto lists = make_lr_scheduler(
      "WarmupLR", {{"warmup_min_lr", {0.001, 0.002}}, {"warmup_max_lr", 1.0}, {"warmup_num_steps", 10}}, *opt);
  EXPECT_EQ(get_lr(*opt), (std::vector<double>{0.001, 0.002}));
  auto bad = schedule_config_error([&] {
    make_lr_scheduler("WarmupLR", {{"warmup_min_lr", {0.001}}}, *opt);
  });
  EXPECT_EQ(bad.path(), "scheduler.params.warmup_min_lr");
  EXPECT_NE(std::string(bad.what()).find("expected 2 value for min_lr, got 1"), std::string::npos);
}

TEST(WarmupLR, UnknownWarmupTypeWarnsAndUsesLog) {
  auto opt = optimizer("Adam", {0.05});
  std::unique_ptr<LRScheduler> s;
  const std::string warnings = captured_warnings([&] {
    s = make_lr_scheduler("WarmupLR",
                          {{"warmup_max_lr", 0.1}, {"warmup_num_steps", 10}, {"warmup_type", "cosine"}}, *opt);
  });
  EXPECT_NE(warnings.find("Using unknown warmup_type: cosine. The increasing function is set to default (log)"),
            std::string::npos);
  s->step(1);
  EXPECT_NEAR(lr0(*opt), 0.1 * std::log(2.0) / std::log(10.0), kScheduleTol);
}

TEST(WarmupLR, BeforeTheFirstStepWarnsAndReturnsMin) {
  auto opt = optimizer("Adam", {0.05});
  auto s = make_lr_scheduler("WarmupLR", {{"warmup_min_lr", 0.003}}, *opt);
  std::vector<double> lrs;
  const std::string warnings = captured_warnings([&] { lrs = s->get_lr(); });
  EXPECT_EQ(lrs, std::vector<double>{0.003});
  EXPECT_NE(warnings.find("Attempting to get learning rate from scheduler before it has started"),
            std::string::npos);
}

TEST(WarmupLR, WarmupNumStepsMustBeAPositiveInteger) {
  auto opt = optimizer("Adam", {0.05});
  for (const json& n : {json(0), json(-5), json(2.5)}) {
    auto e = schedule_config_error([&] { make_lr_scheduler("WarmupLR", {{"warmup_num_steps", n}}, *opt); });
    EXPECT_EQ(e.path(), "scheduler.params.warmup_num_steps");
    EXPECT_NE(std::string(e.what()).find("warmup_num_steps must be a positive integer, got"), std::string::npos);
  }
  EXPECT_NO_THROW(make_lr_scheduler("WarmupLR", {{"warmup_num_steps", 1e3}}, *opt));
}

TEST(WarmupLR, ResumingDoesNotTouchTheOptimizerAndStateRoundTrips) {
  auto opt = optimizer("Adam", {0.05});
  auto s = make_lr_scheduler("WarmupLR", {{"warmup_max_lr", 0.1}, {"last_batch_iteration", 5}}, *opt);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.05);
  EXPECT_EQ(s->last_batch_iteration(), 5);

  auto fresh = make_lr_scheduler("WarmupLR", {{"warmup_max_lr", 0.1}, {"warmup_num_steps", 10}}, *opt);
  fresh->load_state_dict({{"last_batch_iteration", 6}});
  fresh->step();  // k = 7
  EXPECT_EQ(fresh->last_batch_iteration(), 7);
  EXPECT_NEAR(lr0(*opt), 0.1 * std::log(8.0) / std::log(10.0), kScheduleTol);
  EXPECT_THROW(fresh->load_state_dict(json::object()), CheckpointError);
}

// ---------------------------------------------------------------------------- WarmupDecayLR

TEST(WarmupDecayLR, WarmupThenLinearDecayToMin) {
  auto opt = optimizer("Adam", {0.05});
  auto s = make_lr_scheduler("WarmupDecayLR",
                             {{"total_num_steps", 20}, {"warmup_min_lr", 0.001}, {"warmup_max_lr", 0.01},
                              {"warmup_num_steps", 10}},
                             *opt);
  EXPECT_EQ(s->name(), "WarmupDecayLR");
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.001);
  s->step(0);
  EXPECT_NEAR(lr0(*opt), 0.001, kScheduleTol);
  s->step(9);
  EXPECT_NEAR(lr0(*opt), 0.01, kScheduleTol);
  s->step(10);  // (20-10)/(20-10) = 1
  EXPECT_NEAR(lr0(*opt), 0.01, kScheduleTol);
  s->step(15);  // 0.5
  EXPECT_NEAR(lr0(*opt), 0.001 + 0.009 * 0.5, kScheduleTol);
  s->step(20);  // 0: back to warmup_min_lr, not 0
  EXPECT_NEAR(lr0(*opt), 0.001, kScheduleTol);
  s->step(25);  // max(0, -0.5)
  EXPECT_NEAR(lr0(*opt), 0.001, kScheduleTol);
}

TEST(WarmupDecayLR, DefaultsAndWarnings) {
  auto opt = optimizer("Adam", {0.05});
  std::unique_ptr<LRScheduler> s;
  const std::string warnings = captured_warnings([&] {
    s = make_lr_scheduler("WarmupDecayLR", {{"total_num_steps", 5}, {"warmup_num_steps", 10}}, *opt);
  });
  EXPECT_NE(warnings.find("total_num_steps 5 is less than warmup_num_steps 10"), std::string::npos);
  s->step(10);  // warmup_max_lr defaults to 0.001 here; γ = max(0, (5-10)/max(1, -5)) = 0
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.0);
  s->step(9);
  EXPECT_NEAR(lr0(*opt), 0.001, kScheduleTol);
  EXPECT_EQ(schedule_config_error([&] { make_lr_scheduler("WarmupDecayLR", json::object(), *opt); }).path(),
            "scheduler.params.total_num_steps");
}

// ---------------------------------------------------------------------------- WarmupCosineLR

TEST(WarmupCosineLR, ZeroAtConstructionThenWarmupCosineAndClamp) {
  auto opt = optimizer("Adam", {0.1});
  auto s = make_lr_scheduler("WarmupCosineLR", {{"total_num_steps", 20}, {"warmup_num_steps", 10}}, *opt);
  EXPECT_EQ(s->name(), "WarmupCosineLR");
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.0);  // DeepSpeed's: 0 until the first step
  s->step();  // k = 0: ratio 0 + log(1)/log(10) = 0
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.0);
  s->step();  // k = 1
  EXPECT_NEAR(lr0(*opt), 0.1 * (1.0 / std::log(10.0)) * std::log(2.0), kScheduleTol);
  s->step(9);  // peak at N-1
  EXPECT_NEAR(lr0(*opt), 0.1, kScheduleTol);
  const double cmin = 0.0001;
  s->step(10);  // p = (10-10+1)/(20-10) = 0.1
  EXPECT_NEAR(lr0(*opt), 0.1 * (cmin + (1 - cmin) * (1 + std::cos(kPi * 0.1)) / 2), kScheduleTol);
  s->step(14);  // p = 0.5
  EXPECT_NEAR(lr0(*opt), 0.1 * (cmin + (1 - cmin) * 0.5), 1e-15);
  s->step(19);  // p = 1
  EXPECT_NEAR(lr0(*opt), 0.1 * cmin, kScheduleTol);
  s->step(35);  // clamped (DeepSpeed >= 0.19.3): stays at cos_min_ratio
  EXPECT_NEAR(lr0(*opt), 0.1 * cmin, kScheduleTol);
}

TEST(WarmupCosineLR, WarmupMinRatioLinearAndTotalEqualsWarmup) {
  auto opt = optimizer("Adam", {0.1});
  auto s = make_lr_scheduler("WarmupCosineLR",
                             {{"total_num_steps", 10}, {"warmup_num_steps", 10}, {"warmup_min_ratio", 0.1},
                              {"warmup_type", "linear"}, {"cos_min_ratio", 0.01}},
                             *opt);
  s->step(0);
  EXPECT_NEAR(lr0(*opt), 0.1 * 0.1, kScheduleTol);
  s->step(5);  // 0.1 + 0.5*0.9
  EXPECT_NEAR(lr0(*opt), 0.1 * 0.55, kScheduleTol);
  s->step(10);  // T == N: no division by zero, straight to the floor
  EXPECT_NEAR(lr0(*opt), 0.1 * 0.01, kScheduleTol);
  s->step(11);
  EXPECT_NEAR(lr0(*opt), 0.1 * 0.01, kScheduleTol);
}

TEST(WarmupCosineLR, BaseIsEachGroupsLr) {
  auto opt = optimizer("Adam", {0.1, 0.3});
  auto s = make_lr_scheduler("WarmupCosineLR", {{"total_num_steps", 100}, {"warmup_num_steps", 10}}, *opt);
  EXPECT_EQ(get_lr(*opt), (std::vector<double>{0.0, 0.0}));
  s->step(9);
  EXPECT_NEAR(opt->param_groups()[0].lr, 0.1, kScheduleTol);
  EXPECT_NEAR(opt->param_groups()[1].lr, 0.3, kScheduleTol);
}

// ---------------------------------------------------------------------------- OneCycle

json one_cycle_params() {
  return {{"cycle_min_lr", 0.01}, {"cycle_max_lr", 0.1}, {"cycle_first_step_size", 4},
          {"decay_step_size", 2}, {"decay_lr_rate", 0.5}, {"cycle_min_mom", 0.85},
          {"cycle_max_mom", 0.95}, {"decay_mom_rate", 0.1}};
}

TEST(OneCycle, CycleThenDecayWithMomentum) {
  auto opt = optimizer("Adam", {0.05});
  auto s = make_lr_scheduler("OneCycle", one_cycle_params(), *opt);
  const auto& g = opt->param_groups()[0];
  // Constructor: lr = min, betas = (cycle_min_mom, 0.99); get_mom() at k = -1 says max.
  EXPECT_DOUBLE_EQ(g.lr, 0.01);
  EXPECT_DOUBLE_EQ(g.betas[0], 0.85);
  EXPECT_DOUBLE_EQ(g.betas[1], 0.99);
  EXPECT_DOUBLE_EQ(s->get_mom()->at(0)[0], 0.95);

  // S = 8, ρ = 0.5.
  s->step();  // k = 0: b = 1, x = 0.125, scale 0.25
  EXPECT_NEAR(g.lr, 0.01 + 0.09 * 0.25, kScheduleTol);
  EXPECT_NEAR(g.betas[0], 0.95 - 0.1 * 0.25, kScheduleTol);
  EXPECT_DOUBLE_EQ(g.betas[1], 0.99);
  s->step(3);  // x = 0.5: the peak
  EXPECT_NEAR(g.lr, 0.1, kScheduleTol);
  EXPECT_NEAR(g.betas[0], 0.85, kScheduleTol);
  s->step(5);  // x = 0.75: scale (0.75-1)/(0.5-1) = 0.5
  EXPECT_NEAR(g.lr, 0.055, kScheduleTol);
  EXPECT_NEAR(g.betas[0], 0.9, kScheduleTol);
  s->step(7);  // x = 0: back to min
  EXPECT_NEAR(g.lr, 0.01, kScheduleTol);
  EXPECT_NEAR(g.betas[0], 0.95, kScheduleTol);
  s->step(8);  // decay: d = (8-8+1)/2 = 0.5
  EXPECT_NEAR(g.lr, 0.01 / (1 + 0.5 * 0.5), kScheduleTol);
  EXPECT_NEAR(g.betas[0], 0.95 * (1 + 0.1 * 0.5), kScheduleTol);
  s->step(11);  // d = 2
  EXPECT_NEAR(g.lr, 0.005, kScheduleTol);
  EXPECT_DOUBLE_EQ(g.betas[1], 0.99);
  EXPECT_EQ(python_repr(get_mom(*opt)), "[(" + python_repr(0.95 * 1.2) + ", 0.99)]");
}

TEST(OneCycle, Stairs) {
  auto opt = optimizer("Adam", {0.05});
  json params = one_cycle_params();
  params["cycle_first_stair_count"] = 2;  // the second half defaults to the same count
  auto s = make_lr_scheduler("OneCycle", params, *opt);
  // rising: pos = b*2/4, falling: pos = (8 - b)*2/4; scale = floor(pos)/2
  const std::vector<double> scale = {0.0, 0.5, 0.5, 1.0, 0.5, 0.5, 0.0, 0.0};
  for (int k = 0; k < 8; ++k) {
    s->step(k);
    EXPECT_NEAR(lr0(*opt), 0.01 + 0.09 * scale[k], kScheduleTol) << "k=" << k;
  }
}

TEST(OneCycle, NoDecayKeepsMinAndMax) {
  auto opt = optimizer("Adam", {0.05});
  auto s = make_lr_scheduler(
      "OneCycle", {{"cycle_min_lr", 0.01}, {"cycle_max_lr", 0.1}, {"cycle_first_step_size", 4}}, *opt);
  s->step(100);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.01);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].betas[0], 0.9);  // default cycle_max_mom
  // An asymmetric cycle: first 3, second 1 → S = 4, ρ = 0.75.
  auto asym = make_lr_scheduler("OneCycle",
                                {{"cycle_min_lr", 0.0}, {"cycle_max_lr", 1.0}, {"cycle_first_step_size", 3},
                                 {"cycle_second_step_size", 1}, {"cycle_momentum", false}},
                                *opt);
  EXPECT_FALSE(asym->get_mom().has_value());
  asym->step(0);  // x = 0.25 → 1/3
  EXPECT_NEAR(lr0(*opt), 1.0 / 3.0, kScheduleTol);
  asym->step(2);  // x = 0.75 → 1
  EXPECT_NEAR(lr0(*opt), 1.0, kScheduleTol);
}

TEST(OneCycle, OptimizerWithoutBetasDisablesMomentumWithAWarning) {
  auto opt = optimizer("SGD", {0.05}, {{"momentum", 0.9}});
  std::unique_ptr<LRScheduler> s;
  const std::string warnings = captured_warnings([&] {
    s = make_lr_scheduler("OneCycle", one_cycle_params(), *opt);
  });
  EXPECT_NE(warnings.find("cycle_momentum is disabled because optimizer SGD does not support momentum, "
                          "no betas attribute in defaults"),
            std::string::npos);
  EXPECT_FALSE(s->get_mom().has_value());
  s->step(3);
  EXPECT_NEAR(lr0(*opt), 0.1, kScheduleTol);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].momentum, 0.9);
}

TEST(OneCycle, ParamErrors) {
  auto opt = optimizer("Adam", {0.05});
  EXPECT_EQ(schedule_config_error([&] { make_lr_scheduler("OneCycle", {{"cycle_max_lr", 0.1}}, *opt); }).path(),
            "scheduler.params.cycle_min_lr");
  json zero = one_cycle_params();
  zero["cycle_first_step_size"] = 0;
  EXPECT_EQ(schedule_config_error([&] { make_lr_scheduler("OneCycle", zero, *opt); }).path(),
            "scheduler.params.cycle_first_step_size");
  json negative = one_cycle_params();
  negative["cycle_second_step_size"] = -1;
  EXPECT_EQ(schedule_config_error([&] { make_lr_scheduler("OneCycle", negative, *opt); }).path(),
            "scheduler.params.cycle_second_step_size");
  // A misspelt key is reported as such, not as the missing key it was meant to be.
  auto typo = schedule_config_error([&] {
    make_lr_scheduler("OneCycle", {{"cycle_minlr", 0.01}, {"cycle_max_lr", 0.1}}, *opt);
  });
  EXPECT_EQ(typo.path(), "scheduler.params.cycle_minlr");
  EXPECT_NE(std::string(typo.what()).find("did you mean 'cycle_min_lr'"), std::string::npos);
}

// ---------------------------------------------------------------------------- LRRangeTest

TEST(LRRangeTest, ContinuousAndStaircase) {
  auto opt = optimizer("Adam", {0.05});
  auto s = make_lr_scheduler(
      "LRRangeTest", {{"lr_range_test_min_lr", 0.001}, {"lr_range_test_step_size", 10}, {"lr_range_test_step_rate", 2.0}},
      *opt);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.001);
  s->step();  // interval 0.1
  EXPECT_NEAR(lr0(*opt), 0.001 * (1 + 2.0 * 0.1), kScheduleTol);
  s->step(9);  // interval 1
  EXPECT_NEAR(lr0(*opt), 0.003, kScheduleTol);

  auto stairs = make_lr_scheduler(
      "LRRangeTest",
      {{"lr_range_test_min_lr", 0.001}, {"lr_range_test_step_size", 10}, {"lr_range_test_staircase", true}}, *opt);
  stairs->step(8);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.001);
  stairs->step(9);
  EXPECT_NEAR(lr0(*opt), 0.002, kScheduleTol);

  auto defaults = make_lr_scheduler("LRRangeTest", json::object(), *opt);
  defaults->step(1999);  // 1e-3 * (1 + 1.0 * 2000/2000)
  EXPECT_NEAR(lr0(*opt), 0.002, kScheduleTol);
  EXPECT_EQ(schedule_config_error([&] {
              make_lr_scheduler("LRRangeTest", {{"lr_range_test_step_size", 0}}, *opt);
            }).path(),
            "scheduler.params.lr_range_test_step_size");
}

// ---------------------------------------------------------------------------- StepLR

TEST(StepLR, TorchSemantics) {
  auto opt = optimizer("SGD", {0.1}, {{"momentum", 0.0}});
  auto s = make_lr_scheduler("StepLR", {{"step_size", 3}, {"gamma", 0.5}}, *opt);
  EXPECT_EQ(s->last_batch_iteration(), 0);  // torch's constructor steps once
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.1);
  s->step();
  s->step();
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.1);  // k = 2
  s->step();
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.05);  // k = 3
  s->step(6);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.025);
  const json state = s->state_dict();
  EXPECT_EQ(state["last_epoch"], 6);
  EXPECT_EQ(state["base_lrs"], json({0.1}));

  auto restored = make_lr_scheduler("StepLR", {{"step_size", 3}, {"gamma", 0.5}}, *opt);
  restored->load_state_dict(state);
  restored->step();
  EXPECT_EQ(restored->last_batch_iteration(), 7);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.025);
  EXPECT_EQ(schedule_config_error([&] { make_lr_scheduler("StepLR", json::object(), *opt); }).path(),
            "scheduler.params.step_size");
}

// ---------------------------------------------------------------------------- factory

TEST(MakeLrScheduler, UnknownTypeAndParams) {
  auto opt = optimizer("Adam", {0.05});
  auto type = schedule_config_error([&] { make_lr_scheduler("WarmUpLR", json::object(), *opt); });
  EXPECT_EQ(type.path(), "scheduler.type");
  EXPECT_NE(std::string(type.what()).find("DeepSpeed does not recognize LR scheduler WarmUpLR"),
            std::string::npos);
  EXPECT_NE(std::string(type.what()).find("did you mean 'WarmupLR'"), std::string::npos);

  auto key = schedule_config_error([&] {
    make_lr_scheduler("WarmupLR", {{"warmup_num_step", 10}, {"warmup_min_lr", 0.5}}, *opt);
  });
  EXPECT_EQ(key.path(), "scheduler.params.warmup_num_step");
  EXPECT_NE(std::string(key.what()).find("did you mean 'warmup_num_steps'"), std::string::npos);
  EXPECT_DOUBLE_EQ(lr0(*opt), 0.05);  // a rejected config leaves the optimizer alone

  EXPECT_EQ(schedule_config_error([&] { make_lr_scheduler("WarmupLR", {{"warmup_type", 3}}, *opt); }).path(),
            "scheduler.params.warmup_type");
  EXPECT_EQ(schedule_config_error([&] { make_lr_scheduler("WarmupLR", json::array(), *opt); }).path(),
            "scheduler.params");
  // "auto" and null mean the default.
  EXPECT_NO_THROW(make_lr_scheduler("WarmupLR", {{"warmup_max_lr", "auto"}, {"warmup_min_lr", nullptr}}, *opt));
}

TEST(MakeLrScheduler, EngineOrderOptimizerStepNUsesKNMinus2) {
  // The engine steps the schedule after the optimizer: step 1 runs with the construction lr.
  auto opt = optimizer("SGD", {1.0}, {{"lr", 1.0}});
  auto s = make_lr_scheduler("LRRangeTest", {{"lr_range_test_min_lr", 0.1}, {"lr_range_test_step_size", 1}}, *opt);
  std::vector<double> used;
  for (int n = 1; n <= 3; ++n) {
    used.push_back(lr0(*opt));  // what optimizer step n uses
    s->step();
  }
  EXPECT_NEAR(used[0], 0.1, kScheduleTol);        // construction value
  EXPECT_NEAR(used[1], 0.1 * 2.0, kScheduleTol);  // k = 0
  EXPECT_NEAR(used[2], 0.1 * 3.0, kScheduleTol);  // k = 1
}

}  // namespace
}  // namespace deepspeed
