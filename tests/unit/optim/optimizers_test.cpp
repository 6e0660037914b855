// Optimizers against hand-computed steps (doubles, one or two elements, the arithmetic
// written out), factory errors, state, dtypes, and a comparison with torch.optim where
// /usr/bin/python3 has torch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "deepspeed/errors.h"
#include "deepspeed/optimizer.h"
#include "optim/lamb.h"

namespace deepspeed {
namespace {

using nlohmann::json;

constexpr double kTol = 1e-12;

torch::Tensor tensor(std::vector<double> values) {
  return torch::tensor(values, torch::TensorOptions().dtype(torch::kDouble));
}

void set_grad(torch::Tensor& p, std::vector<double> g) { p.mutable_grad() = tensor(std::move(g)); }

double at(const torch::Tensor& t, int64_t i) { return t[i].item<double>(); }

std::vector<ParamGroup> group_of(const torch::Tensor& p) {
  ParamGroup g;
  g.params = {p};
  return {g};
}

// An optimizer of `type` over the single tensor p.
std::unique_ptr<Optimizer> make(const std::string& type, const json& params, torch::Tensor p) {
  return make_optimizer(type, params, group_of(p));
}

template <class F>
ConfigError config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a ConfigError";
  return ConfigError("", "");
}

// ---------------------------------------------------------------------------- Adam / AdamW

TEST(Adam, DefaultsAreFusedAdamsAndAdamMeansAdamW) {
  auto p = tensor({1.0});
  auto opt = make("Adam", json::object(), p);
  const ParamGroup& g = opt->param_groups()[0];
  EXPECT_DOUBLE_EQ(g.lr, 1e-3);
  EXPECT_DOUBLE_EQ(g.betas[0], 0.9);
  EXPECT_DOUBLE_EQ(g.betas[1], 0.999);
  EXPECT_DOUBLE_EQ(g.eps, 1e-8);
  EXPECT_DOUBLE_EQ(g.weight_decay, 0.0);
  EXPECT_EQ(g.extra.at("bias_correction"), 1.0);
  // As DeepSpeed: "Adam" runs AdamW unless adam_w_mode is false.
  EXPECT_EQ(opt->name(), "AdamW");
  EXPECT_EQ(opt->class_name(), "FusedAdam");
  EXPECT_TRUE(opt->has_betas());
  EXPECT_FALSE(opt->uses_momentum());

  EXPECT_EQ(make("adam", {{"adam_w_mode", false}}, p)->name(), "Adam");
  EXPECT_EQ(make("AdamW", {{"adam_w_mode", false}}, p)->name(), "AdamW");
  EXPECT_EQ(make("ADAMW", json::object(), p)->name(), "AdamW");

  auto offload = make_optimizer("Adam", json::object(), group_of(p), OptimizerOptions{true});
  EXPECT_EQ(offload->class_name(), "DeepSpeedCPUAdam");

  // torch_adam: torch.optim.AdamW (default weight_decay 0.01) or torch.optim.Adam.
  auto torch_adamw = make("Adam", {{"torch_adam", true}}, p);
  EXPECT_EQ(torch_adamw->class_name(), "AdamW");
  EXPECT_DOUBLE_EQ(torch_adamw->param_groups()[0].weight_decay, 0.01);
  auto torch_adam = make("Adam", {{"torch_adam", true}, {"adam_w_mode", false}}, p);
  EXPECT_EQ(torch_adam->class_name(), "Adam");
  EXPECT_DOUBLE_EQ(torch_adam->param_groups()[0].weight_decay, 0.0);
}

TEST(Adam, AdamWTwoStepsByHand) {
  auto p = tensor({1.0});
  auto opt = make("AdamW", {{"lr", 0.1}, {"weight_decay", 0.1}}, p);
  set_grad(p, {0.5});
  opt->step();
  // m = 0.1*0.5 = 0.05, v = 0.001*0.25 = 0.00025, bc1 = 0.1, bc2 = 0.001
  // update = (0.05/0.1) / (sqrt(0.00025/0.001) + 1e-8) + 0.1*1.0 = 0.5/(0.5+1e-8) + 0.1
  const double p1 = 1.0 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.1 * 1.0);
  EXPECT_NEAR(at(p, 0), p1, kTol);
  EXPECT_NEAR(p1, 0.89, 1e-8);
  opt->step();
  // m = 0.9*0.05 + 0.1*0.5 = 0.095, v = 0.999*0.00025 + 0.001*0.25 = 0.00049975
  // bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999
  const double m2 = 0.095, v2 = 0.00049975;
  const double p2 = p1 - 0.1 * ((m2 / 0.19) / (std::sqrt(v2 / 0.001999) + 1e-8) + 0.1 * p1);
  EXPECT_NEAR(at(p, 0), p2, kTol);
  EXPECT_NEAR(p2, 0.89 - 0.1 * (1.0 + 0.089), 1e-7);  // 0.7811

  const auto& state = opt->state()[0];
  EXPECT_EQ(state.at("step").item<double>(), 2.0);
  EXPECT_EQ(state.at("step").scalar_type(), torch::kFloat);
  EXPECT_NEAR(state.at("exp_avg").item<double>(), m2, kTol);
  EXPECT_NEAR(state.at("exp_avg_sq").item<double>(), v2, kTol);
}

TEST(Adam, L2ModeAddsDecayToTheGradient) {
  auto p = tensor({1.0});
  auto opt = make("Adam", {{"lr", 0.1}, {"weight_decay", 0.1}, {"adam_w_mode", false}}, p);
  set_grad(p, {0.5});
  opt->step();
  // g' = 0.5 + 0.1*1.0 = 0.6; m = 0.06, v = 0.00036; update = 0.6/(0.6+1e-8)
  const double p1 = 1.0 - 0.1 * (0.6 / (0.6 + 1e-8));
  EXPECT_NEAR(at(p, 0), p1, kTol);
  opt->step();
  // g' = 0.5 + 0.1*p1; m = 0.9*0.06 + 0.1*g'; v = 0.999*0.00036 + 0.001*g'^2
  const double g2 = 0.5 + 0.1 * p1;
  const double m2 = 0.9 * 0.06 + 0.1 * g2, v2 = 0.999 * 0.00036 + 0.001 * g2 * g2;
  const double p2 = p1 - 0.1 * ((m2 / 0.19) / (std::sqrt(v2 / 0.001999) + 1e-8));
  EXPECT_NEAR(at(p, 0), p2, kTol);
  // AdamW with the same numbers gave 0.7811; L2 mode differs.
  EXPECT_GT(std::abs(p2 - 0.7811), 1e-2);
}

TEST(Adam, WithoutBiasCorrection) {
  auto p = tensor({1.0, -2.0});
  auto opt = make("Adam", {{"lr", 0.1}, {"bias_correction", false}}, p);
  set_grad(p, {0.5, -0.1});
  opt->step();
  // m = 0.1*g, v = 0.001*g^2; update = m / (sqrt(v) + eps)
  EXPECT_NEAR(at(p, 0), 1.0 - 0.1 * (0.05 / (std::sqrt(0.00025) + 1e-8)), kTol);
  EXPECT_NEAR(at(p, 1), -2.0 - 0.1 * (-0.01 / (std::sqrt(0.00001) + 1e-8)), kTol);
}

TEST(Adam, TorchAdamWOrderingGivesTheSameStep) {
  auto p = tensor({1.0});
  auto opt = make("AdamW", {{"lr", 0.1}, {"weight_decay", 0.1}, {"torch_adam", true}}, p);
  set_grad(p, {0.5});
  opt->step();
  // torch: p *= 1 - lr*wd; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
  const double p1 = 1.0 * (1.0 - 0.01) - 0.1 / 0.1 * 0.05 / (std::sqrt(0.00025) / std::sqrt(0.001) + 1e-8);
  EXPECT_NEAR(at(p, 0), p1, kTol);
}

TEST(Adam, RejectsAmsgradAndBiasCorrectionWithTorchAdam) {
  auto p = tensor({1.0});
  EXPECT_EQ(config_error([&] { make("Adam", {{"amsgrad", true}}, p); }).path(),
            "optimizer.params.amsgrad");
  EXPECT_NO_THROW(make("Adam", {{"amsgrad", false}}, p));
  EXPECT_EQ(config_error([&] {
              make("Adam", {{"torch_adam", true}, {"bias_correction", true}}, p);
            }).path(),
            "optimizer.params.bias_correction");
}

// ---------------------------------------------------------------------------- SGD

TEST(Sgd, MomentumThreeStepsByHand) {
  auto p = tensor({1.0});
  auto opt = make("SGD", {{"lr", 0.1}, {"momentum", 0.9}}, p);
  EXPECT_EQ(opt->name(), "SGD");
  EXPECT_TRUE(opt->uses_momentum());
  EXPECT_FALSE(opt->has_betas());
  set_grad(p, {0.5});
  opt->step();  // buf = 0.5; p = 1 - 0.1*0.5
  EXPECT_NEAR(at(p, 0), 0.95, kTol);
  opt->step();  // buf = 0.9*0.5 + 0.5 = 0.95; p = 0.95 - 0.095
  EXPECT_NEAR(at(p, 0), 0.855, kTol);
  opt->step();  // buf = 0.9*0.95 + 0.5 = 1.355; p = 0.855 - 0.1355
  EXPECT_NEAR(at(p, 0), 0.7195, kTol);
  EXPECT_NEAR(opt->state()[0].at("momentum_buffer").item<double>(), 1.355, kTol);
}

TEST(Sgd, Nesterov) {
  auto p = tensor({1.0});
  auto opt = make("SGD", {{"lr", 0.1}, {"momentum", 0.9}, {"nesterov", true}}, p);
  set_grad(p, {0.5});
  opt->step();  // buf = 0.5; d = 0.5 + 0.9*0.5 = 0.95; p = 1 - 0.095
  EXPECT_NEAR(at(p, 0), 0.905, kTol);
  opt->step();  // buf = 0.95; d = 0.5 + 0.9*0.95 = 1.355; p = 0.905 - 0.1355
  EXPECT_NEAR(at(p, 0), 0.7695, kTol);
}

TEST(Sgd, DampeningAndWeightDecay) {
  auto p = tensor({1.0});
  auto opt = make("SGD", {{"lr", 0.1}, {"momentum", 0.9}, {"dampening", 0.5}, {"weight_decay", 0.1}}, p);
  set_grad(p, {0.5});
  opt->step();  // d = 0.5 + 0.1*1 = 0.6; buf = 0.6 (first step: no dampening); p = 1 - 0.06
  EXPECT_NEAR(at(p, 0), 0.94, kTol);
  opt->step();  // d = 0.5 + 0.094 = 0.594; buf = 0.9*0.6 + 0.5*0.594 = 0.837; p = 0.94 - 0.0837
  EXPECT_NEAR(at(p, 0), 0.8563, kTol);
}

TEST(Sgd, PlainAndMaximize) {
  auto p = tensor({1.0, 2.0});
  auto opt = make("SGD", {{"lr", 0.5}}, p);
  set_grad(p, {0.2, -0.4});
  opt->step();
  EXPECT_NEAR(at(p, 0), 0.9, kTol);
  EXPECT_NEAR(at(p, 1), 2.2, kTol);
  EXPECT_TRUE(opt->state()[0].empty());  // no momentum, no state (as torch)
  auto q = tensor({1.0});
  auto up = make("SGD", {{"lr", 0.5}, {"maximize", true}}, q);
  set_grad(q, {0.2});
  up->step();
  EXPECT_NEAR(at(q, 0), 1.1, kTol);
}

TEST(Sgd, ConfigErrors) {
  auto p = tensor({1.0});
  auto missing = config_error([&] { make("SGD", {{"momentum", 0.9}}, p); });
  EXPECT_EQ(missing.path(), "optimizer.params.lr");
  // A group that sets its own lr needs none from the config.
  auto groups = group_of(p);
  groups[0].lr = 0.3;
  groups[0].overrides = {"lr"};
  EXPECT_DOUBLE_EQ(make_optimizer("SGD", json::object(), groups)->param_groups()[0].lr, 0.3);

  auto nesterov = config_error([&] { make("SGD", {{"lr", 0.1}, {"nesterov", true}}, p); });
  EXPECT_NE(std::string(nesterov.what()).find("Nesterov momentum requires a momentum and zero dampening"),
            std::string::npos);
  // torch.optim names are case-sensitive, as in DeepSpeed.
  auto lower = config_error([&] { make("sgd", {{"lr", 0.1}}, p); });
  EXPECT_EQ(lower.path(), "optimizer.type");
  EXPECT_NE(std::string(lower.what()).find("sgd is not a supported DeepSpeed Optimizer"), std::string::npos);
  EXPECT_NE(std::string(lower.what()).find("did you mean 'SGD'"), std::string::npos);
}

// ---------------------------------------------------------------------------- Lamb

Lamb& as_lamb(Optimizer& opt) { return dynamic_cast<Lamb&>(opt); }

TEST(Lamb, FirstStepByHand) {
  auto p = tensor({3.0, 4.0});  // ||p|| = 5
  auto opt = make("lamb", {{"lr", 0.01}}, p);
  EXPECT_EQ(opt->name(), "Lamb");
  EXPECT_EQ(opt->class_name(), "FusedLamb");
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].extra.at("max_coeff"), 10.0);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].extra.at("min_coeff"), 0.01);
  set_grad(p, {1.0, 1.0});
  opt->step();
  // m = 0.1, v = 0.001 (no bias correction inside); u = 0.1/(sqrt(0.001) + 1e-8) each
  const double u = 0.1 / (std::sqrt(0.001) + 1e-8);
  const double coeff = 5.0 / std::sqrt(2.0 * u * u);  // 1.118..., inside [0.01, 10]
  const double step_size = 0.01 * std::sqrt(1.0 - 0.999) / (1.0 - 0.9);
  EXPECT_NEAR(as_lamb(*opt).lamb_coeffs().at(0), coeff, 1e-12);
  EXPECT_NEAR(at(p, 0), 3.0 - step_size * coeff * u, kTol);
  EXPECT_NEAR(at(p, 1), 4.0 - step_size * coeff * u, kTol);

  opt->step();  // second step: m = 0.19, v = 0.001999; trust ratio from the new p
  const double p0 = 3.0 - step_size * coeff * u, p1 = 4.0 - step_size * coeff * u;
  const double u2 = 0.19 / (std::sqrt(0.001999) + 1e-8);
  const double coeff2 = std::sqrt(p0 * p0 + p1 * p1) / std::sqrt(2.0 * u2 * u2);
  const double step_size2 = 0.01 * std::sqrt(1.0 - 0.998001) / (1.0 - 0.81);
  EXPECT_NEAR(at(p, 0), p0 - step_size2 * coeff2 * u2, kTol);
}

TEST(Lamb, WeightDecayEntersTheUpdateAndTheTrustRatio) {
  auto p = tensor({3.0, 4.0});
  auto opt = make("Lamb", {{"lr", 0.01}, {"weight_decay", 0.1}, {"bias_correction", false}}, p);
  set_grad(p, {1.0, 1.0});
  opt->step();
  const double u = 0.1 / (std::sqrt(0.001) + 1e-8);
  const double u0 = u + 0.1 * 3.0, u1 = u + 0.1 * 4.0;
  const double coeff = 5.0 / std::sqrt(u0 * u0 + u1 * u1);
  EXPECT_NEAR(at(p, 0), 3.0 - 0.01 * coeff * u0, kTol);  // step_size = lr
  EXPECT_NEAR(at(p, 1), 4.0 - 0.01 * coeff * u1, kTol);
}

TEST(Lamb, TrustRatioIsClamped) {
  // ||p|| = 500 against ||u|| = sqrt(2)*3.16 → ratio 111.8, clamped to max_coeff 10.
  auto big = tensor({300.0, 400.0});
  auto opt = make("Lamb", {{"lr", 0.01}}, big);
  set_grad(big, {1.0, 1.0});
  opt->step();
  const double u = 0.1 / (std::sqrt(0.001) + 1e-8);
  const double step_size = 0.01 * std::sqrt(0.001) / 0.1;
  EXPECT_DOUBLE_EQ(as_lamb(*opt).lamb_coeffs().at(0), 10.0);
  EXPECT_NEAR(at(big, 0), 300.0 - step_size * 10.0 * u, 1e-10);

  // ||p|| = 0.005 → ratio 0.00112, clamped to min_coeff 0.01.
  auto small = tensor({0.003, 0.004});
  auto opt2 = make("Lamb", {{"lr", 0.01}}, small);
  set_grad(small, {1.0, 1.0});
  opt2->step();
  EXPECT_DOUBLE_EQ(as_lamb(*opt2).lamb_coeffs().at(0), 0.01);
  EXPECT_NEAR(at(small, 0), 0.003 - step_size * 0.01 * u, kTol);

  // Custom bounds.
  auto q = tensor({300.0, 400.0});
  auto opt3 = make("Lamb", {{"max_coeff", 2.5}, {"min_coeff", 0.5}}, q);
  set_grad(q, {1.0, 1.0});
  opt3->step();
  EXPECT_DOUBLE_EQ(as_lamb(*opt3).lamb_coeffs().at(0), 2.5);

  // A zero weight norm gives a ratio of 1.
  auto zero = tensor({0.0, 0.0});
  auto opt4 = make("Lamb", json::object(), zero);
  set_grad(zero, {1.0, 1.0});
  opt4->step();
  EXPECT_DOUBLE_EQ(as_lamb(*opt4).lamb_coeffs().at(0), 1.0);
}

TEST(Lamb, EpsInsideSqrt) {
  auto p = tensor({3.0, 4.0});
  auto opt = make("Lamb", {{"lr", 0.01}, {"eps", 1e-4}, {"eps_inside_sqrt", true}}, p);
  set_grad(p, {1.0, 1.0});
  opt->step();
  const double u = 0.1 / std::sqrt(0.001 + 1e-4);
  const double coeff = 5.0 / std::sqrt(2.0 * u * u);
  EXPECT_NEAR(at(p, 0), 3.0 - 0.01 * std::sqrt(0.001) / 0.1 * coeff * u, kTol);
}

// ---------------------------------------------------------------------------- Adagrad

TEST(Adagrad, DefaultsAndTwoStepsByHand) {
  auto p = tensor({1.0});
  auto defaults = make("Adagrad", json::object(), p);
  EXPECT_DOUBLE_EQ(defaults->param_groups()[0].lr, 1e-2);
  EXPECT_DOUBLE_EQ(defaults->param_groups()[0].eps, 1e-10);
  EXPECT_FALSE(defaults->has_betas());
  EXPECT_EQ(defaults->class_name(), "Adagrad");
  EXPECT_EQ(make_optimizer("adagrad", json::object(), group_of(p), OptimizerOptions{true})->class_name(),
            "DeepSpeedCPUAdagrad");

  auto opt = make("adagrad", {{"lr", 0.1}}, p);
  set_grad(p, {0.5});
  opt->step();  // sum = 0.25; p = 1 - 0.1*0.5/(0.5 + 1e-10)
  const double p1 = 1.0 - 0.1 * 0.5 / (0.5 + 1e-10);
  EXPECT_NEAR(at(p, 0), p1, kTol);
  opt->step();  // sum = 0.5; p -= 0.1*0.5/(sqrt(0.5) + 1e-10)
  EXPECT_NEAR(at(p, 0), p1 - 0.1 * 0.5 / (std::sqrt(0.5) + 1e-10), kTol);
  EXPECT_NEAR(opt->state()[0].at("sum").item<double>(), 0.5, kTol);
}

TEST(Adagrad, LrDecayWeightDecayInitialAccumulator) {
  auto p = tensor({1.0});
  auto opt = make("Adagrad", {{"lr", 0.1}, {"lr_decay", 0.5}, {"weight_decay", 0.1},
                              {"initial_accumulator_value", 0.1}, {"eps", 1e-6}},
                  p);
  set_grad(p, {0.5});
  opt->step();
  // g' = 0.5 + 0.1*1 = 0.6; clr = 0.1/(1 + 0*0.5); sum = 0.1 + 0.36
  const double p1 = 1.0 - 0.1 * 0.6 / (std::sqrt(0.46) + 1e-6);
  EXPECT_NEAR(at(p, 0), p1, kTol);
  opt->step();
  // g' = 0.5 + 0.1*p1; clr = 0.1/(1 + 1*0.5); sum = 0.46 + g'^2
  const double g2 = 0.5 + 0.1 * p1;
  EXPECT_NEAR(at(p, 0), p1 - (0.1 / 1.5) * g2 / (std::sqrt(0.46 + g2 * g2) + 1e-6), kTol);
}

// ---------------------------------------------------------------------------- Lion

TEST(Lion, TwoStepsByHand) {
  auto p = tensor({1.0, -1.0, 0.5});
  auto opt = make("lion", {{"lr", 0.1}, {"weight_decay", 0.1}, {"betas", {0.9, 0.99}}}, p);
  EXPECT_EQ(opt->class_name(), "FusedLion");
  set_grad(p, {0.5, -0.2, 0.0});
  opt->step();
  // c = 0.1*g → sign (1, -1, 0); p = p*(1 - 0.01) - 0.1*sign; m = 0.01*g
  EXPECT_NEAR(at(p, 0), 0.99 - 0.1, kTol);
  EXPECT_NEAR(at(p, 1), -0.99 + 0.1, kTol);
  EXPECT_NEAR(at(p, 2), 0.495, kTol);
  set_grad(p, {-0.01, 0.3, 0.0});
  opt->step();
  // c = 0.9*m + 0.1*g = (0.0045 - 0.001, -0.0018 + 0.03, 0) → sign (1, 1, 0): the sign
  // follows c (β1), not the stored m; m = 0.99*m + 0.01*g = (0.00485, 0.00102, 0)
  EXPECT_NEAR(at(p, 0), 0.89 * 0.99 - 0.1, kTol);
  EXPECT_NEAR(at(p, 1), -0.89 * 0.99 - 0.1, kTol);
  EXPECT_NEAR(at(p, 2), 0.495 * 0.99, kTol);
  const auto& m = opt->state()[0].at("exp_avg");
  EXPECT_NEAR(at(m, 0), 0.00485, kTol);
  EXPECT_NEAR(at(m, 1), 0.00102, kTol);
}

TEST(Lion, Defaults) {
  auto p = tensor({1.0});
  auto opt = make("Lion", json::object(), p);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].lr, 1e-3);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].betas[0], 0.9);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].betas[1], 0.999);  // FusedLion's default
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].weight_decay, 0.0);
}

// ---------------------------------------------------------------------------- factory

TEST(MakeOptimizer, UnknownAndMistypedParams) {
  auto p = tensor({1.0});
  auto unknown = config_error([&] { make("Adam", {{"lrr", 0.1}}, p); });
  EXPECT_EQ(unknown.path(), "optimizer.params.lrr");
  EXPECT_NE(std::string(unknown.what()).find("did you mean 'lr'"), std::string::npos);
  auto wd = config_error([&] { make("Lamb", {{"weight_decy", 0.1}}, p); });
  EXPECT_NE(std::string(wd.what()).find("did you mean 'weight_decay'"), std::string::npos);

  EXPECT_EQ(config_error([&] { make("Adam", {{"lr", "fast"}}, p); }).path(), "optimizer.params.lr");
  EXPECT_EQ(config_error([&] { make("Adam", {{"betas", {0.9}}}, p); }).path(),
            "optimizer.params.betas");
  EXPECT_EQ(config_error([&] { make("Adam", {{"betas", {0.9, 0.99, 0.1}}}, p); }).path(),
            "optimizer.params.betas");
  EXPECT_EQ(config_error([&] { make("Adam", {{"betas", {0.9, 1.5}}}, p); }).path(),
            "optimizer.params.betas");
  EXPECT_EQ(config_error([&] { make("Adam", {{"bias_correction", 1}}, p); }).path(),
            "optimizer.params.bias_correction");
  EXPECT_EQ(config_error([&] { make("Adam", {{"lr", -1.0}}, p); }).path(), "optimizer.params.lr");
  EXPECT_EQ(config_error([&] { make("Adam", json::array(), p); }).path(), "optimizer.params");

  auto clip = config_error([&] { make("Adam", {{"max_grad_norm", 1.0}}, p); });
  EXPECT_EQ(clip.path(), "optimizer.params.max_grad_norm");
  EXPECT_NE(std::string(clip.what()).find("'max_grad_norm' is not supported as an optimizer parameter, "
                                          "please switch to using the deepspeed parameter "
                                          "'gradient_clipping'"),
            std::string::npos);

  // null and "auto" mean the default; null params mean no params.
  EXPECT_DOUBLE_EQ(make("Adam", {{"lr", "auto"}}, p)->param_groups()[0].lr, 1e-3);
  EXPECT_DOUBLE_EQ(make("Adam", {{"lr", nullptr}}, p)->param_groups()[0].lr, 1e-3);
  EXPECT_DOUBLE_EQ(make("Adam", nullptr, p)->param_groups()[0].lr, 1e-3);
}

TEST(MakeOptimizer, UnknownTypes) {
  auto p = tensor({1.0});
  auto adamax = config_error([&] { make("Adamax", json::object(), p); });
  EXPECT_EQ(adamax.path(), "optimizer.type");
  EXPECT_NE(std::string(adamax.what()).find("Adamax is not a supported DeepSpeed Optimizer"),
            std::string::npos);
  auto onebit = config_error([&] { make("OneBitAdam", json::object(), p); });
  EXPECT_NE(std::string(onebit.what()).find("make_onebit_optimizer"), std::string::npos);
  auto muon = config_error([&] { make("Muon", json::object(), p); });
  EXPECT_NE(std::string(muon.what()).find("not available in deepspeed-cpp"), std::string::npos);
}

TEST(MakeOptimizer, ConfigParamsFillGroupsButGroupOverridesWin) {
  auto a = tensor({1.0});
  auto b = tensor({1.0});
  std::vector<ParamGroup> groups(2);
  groups[0].params = {a};
  groups[1].params = {b};
  groups[1].weight_decay = 0.0;  // e.g. biases and norms without decay
  groups[1].overrides = {"weight_decay"};
  auto opt = make_optimizer("AdamW", {{"lr", 0.1}, {"weight_decay", 0.1}}, groups);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].weight_decay, 0.1);
  EXPECT_DOUBLE_EQ(opt->param_groups()[1].weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(opt->param_groups()[1].lr, 0.1);
  set_grad(a, {0.5});
  set_grad(b, {0.5});
  opt->step();
  EXPECT_NEAR(at(a, 0), 1.0 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.1), kTol);
  EXPECT_NEAR(at(b, 0), 1.0 - 0.1 * (0.5 / (0.5 + 1e-8)), kTol);
}

// ---------------------------------------------------------------------------- shared behaviour

TEST(Optimizer, SkipsUndefinedGradsAndZeroGradUndefines) {
  auto a = tensor({1.0});
  auto b = tensor({2.0});
  ParamGroup g;
  g.params = {a, b};
  auto opt = make_optimizer("SGD", {{"lr", 0.1}}, {g});
  set_grad(a, {1.0});
  opt->step();
  EXPECT_NEAR(at(a, 0), 0.9, kTol);
  EXPECT_DOUBLE_EQ(at(b, 0), 2.0);
  opt->zero_grad();
  EXPECT_FALSE(a.grad().defined());
  opt->step();  // nothing to do
  EXPECT_NEAR(at(a, 0), 0.9, kTol);
}

TEST(Optimizer, StateRoundTripsThroughACopy) {
  for (const std::string type : {"Adam", "Lamb", "Adagrad", "Lion", "SGD"}) {
    SCOPED_TRACE(type);
    const json params = {{"lr", 0.05}, {"weight_decay", 0.01}};
    const json sgd_params = {{"lr", 0.05}, {"momentum", 0.9}};
    auto a = tensor({1.0, -0.5, 0.25});
    auto opt_a = make(type, type == "SGD" ? sgd_params : params, a);
    set_grad(a, {0.3, -0.2, 0.1});
    opt_a->step();
    opt_a->step();

    // A fresh optimizer given a copy of the weights and of the state continues identically.
    auto b = a.detach().clone();
    auto opt_b = make(type, type == "SGD" ? sgd_params : params, b);
    for (const auto& tensor_state : opt_a->state()) {
      std::map<std::string, torch::Tensor> copy;
      for (const auto& [key, value] : tensor_state) copy[key] = value.clone();
      opt_b->state().push_back(copy);
    }
    set_grad(b, {0.3, -0.2, 0.1});
    opt_a->step();
    opt_b->step();
    EXPECT_TRUE(torch::equal(a, b));
  }
}

TEST(Optimizer, EveryFloatingDtype) {
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    for (const std::string type : {"Adam", "Lamb", "Adagrad", "Lion", "SGD"}) {
      SCOPED_TRACE(type + " " + std::string(c10::toString(dtype)));
      auto p = torch::tensor({1.0, -2.0, 0.5}).to(dtype);
      auto opt = make(type, {{"lr", 0.1}}, p);
      p.mutable_grad() = torch::tensor({0.5, 0.25, -1.0}).to(dtype);
      opt->step();
      opt->step();
      EXPECT_EQ(p.scalar_type(), dtype);
      EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
      EXPECT_LT(p[0].item<double>(), 1.0);  // moved against the gradient
      EXPECT_GT(p[2].item<double>(), 0.5);
      for (const auto& [key, value] : opt->state()[0]) {
        if (key != "step") {
          EXPECT_EQ(value.scalar_type(), dtype) << key;
        }
      }
    }
  }
}

TEST(Optimizer, NoAutogradIsRecorded) {
  auto p = torch::tensor({1.0, 2.0}, torch::requires_grad());
  auto opt = make_optimizer("Adam", {{"lr", 0.1}}, group_of(p));
  (p * p).sum().backward();
  opt->step();
  EXPECT_TRUE(p.requires_grad());
  EXPECT_TRUE(p.is_leaf());
}

// ---------------------------------------------------------------------------- engine view

TEST(EngineView, GetLrAndGetMom) {
  auto p = tensor({1.0});
  std::vector<ParamGroup> two(2);
  two[0].params = {p};
  two[1].params = {tensor({2.0})};
  auto adam = make_optimizer("Adam", {{"lr", 0.001}, {"betas", {0.8, 0.99}}}, two);
  EXPECT_EQ(get_lr(*adam), (std::vector<double>{0.001, 0.001}));
  const auto mom = get_mom(*adam);
  ASSERT_EQ(mom.size(), 2u);
  EXPECT_TRUE(mom[0].is_pair);
  EXPECT_DOUBLE_EQ(mom[0].values[1], 0.99);
  EXPECT_EQ(python_repr(get_lr(*adam)), "[0.001, 0.001]");
  EXPECT_EQ(python_repr(mom), "[(0.8, 0.99), (0.8, 0.99)]");

  auto sgd = make("SGD", {{"lr", 0.1}, {"momentum", 0.9}}, p);
  EXPECT_EQ(python_repr(get_mom(*sgd)), "[0.9]");
  auto adagrad = make("Adagrad", json::object(), p);
  EXPECT_EQ(python_repr(get_mom(*adagrad)), "[0.0]");  // DeepSpeed fills a missing key with 0.0
}

TEST(EngineView, PythonFloatRepr) {
  EXPECT_EQ(python_repr(0.001), "0.001");
  EXPECT_EQ(python_repr(0.0001), "0.0001");
  EXPECT_EQ(python_repr(1e-05), "1e-05");
  EXPECT_EQ(python_repr(2.5e-07), "2.5e-07");
  EXPECT_EQ(python_repr(0.00017), "0.00017");
  EXPECT_EQ(python_repr(1.0), "1.0");
  EXPECT_EQ(python_repr(0.0), "0.0");
  EXPECT_EQ(python_repr(-0.5), "-0.5");
  EXPECT_EQ(python_repr(123.456), "123.456");
  EXPECT_EQ(python_repr(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(python_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(python_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(python_repr(1e16), "1e+16");
  EXPECT_EQ(python_repr(1.5e300), "1.5e+300");
  EXPECT_EQ(python_repr(0.0009999999999999998), "0.0009999999999999998");
}

// ---------------------------------------------------------------------------- torch.optim

// Runs the same 5 steps in Debian's python3-torch and compares. Skipped when /usr/bin/python3
// has no torch.
class TorchReference : public ::testing::Test {
 protected:
  static std::string run_python(const std::string& script) {
    const std::string path = ::testing::TempDir() + "/optim_torch_reference.py";
    std::ofstream(path) << script;
    std::string out;
    FILE* pipe = popen(("/usr/bin/python3 " + path + " 2>/dev/null").c_str(), "r");
    if (!pipe) return out;
    char buffer[4096];
    while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
    if (pclose(pipe) != 0) return "";
    return out;
  }
};

TEST_F(TorchReference, SgdAdagradAdamAdamWMatchTorchOptim) {
  if (run_python("import torch\nprint('ok')\n").find("ok") == std::string::npos) {
    GTEST_SKIP() << "/usr/bin/python3 has no torch; torch.optim comparison skipped";
  }
  struct Case {
    std::string ds_type;
    json ds_params;
    std::string torch_ctor;
  };
  const std::vector<Case> cases = {
      {"SGD", {{"lr", 0.1}, {"momentum", 0.9}, {"weight_decay", 0.01}}, "SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)"},
      {"SGD", {{"lr", 0.1}, {"momentum", 0.9}, {"nesterov", true}}, "SGD(ps, lr=0.1, momentum=0.9, nesterov=True)"},
      {"SGD", {{"lr", 0.1}, {"momentum", 0.5}, {"dampening", 0.3}}, "SGD(ps, lr=0.1, momentum=0.5, dampening=0.3)"},
      {"Adagrad", {{"lr", 0.1}, {"lr_decay", 0.1}, {"weight_decay", 0.01}, {"initial_accumulator_value", 0.2}},
       "Adagrad(ps, lr=0.1, lr_decay=0.1, weight_decay=0.01, initial_accumulator_value=0.2)"},
      {"Adam", {{"lr", 0.01}, {"weight_decay", 0.1}, {"torch_adam", true}, {"adam_w_mode", false}},
       "Adam(ps, lr=0.01, weight_decay=0.1)"},
      {"AdamW", {{"lr", 0.01}, {"weight_decay", 0.1}, {"torch_adam", true}}, "AdamW(ps, lr=0.01, weight_decay=0.1)"},
      // FusedAdam's arithmetic is torch's AdamW/Adam up to rounding.
      {"AdamW", {{"lr", 0.01}, {"weight_decay", 0.1}}, "AdamW(ps, lr=0.01, weight_decay=0.1)"},
      {"Adam", {{"lr", 0.01}, {"weight_decay", 0.1}, {"adam_w_mode", false}}, "Adam(ps, lr=0.01, weight_decay=0.1)"},
  };
  const std::vector<double> p0 = {1.0, -0.5, 0.25, 2.0};
  auto grad_at = [](int step, size_t i) { return std::sin(1.0 + step * 0.7 + i * 1.3) * 0.5; };

  std::string script = "import torch, json\nout = []\n";
  for (const auto& c : cases) {
    script += "p = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=torch.float64, requires_grad=True)\n";
    script += "ps = [p]\nopt = torch.optim." + c.torch_ctor + "\n";
    script += "import math\n";
    script += "for s in range(5):\n";
    script += "    p.grad = torch.tensor([math.sin(1.0 + s*0.7 + i*1.3)*0.5 for i in range(4)], dtype=torch.float64)\n";
    script += "    opt.step()\n";
    script += "out.append(p.detach().tolist())\n";
  }
  script += "print(json.dumps(out))\n";
  const std::string output = run_python(script);
  ASSERT_FALSE(output.empty()) << "python failed";
  const json expected = json::parse(output);
  ASSERT_EQ(expected.size(), cases.size());

  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE(cases[c].torch_ctor + " vs " + cases[c].ds_params.dump());
    auto p = tensor(p0);
    auto opt = make(cases[c].ds_type, cases[c].ds_params, p);
    for (int s = 0; s < 5; ++s) {
      std::vector<double> g;
      for (size_t i = 0; i < p0.size(); ++i) g.push_back(grad_at(s, i));
      set_grad(p, g);
      opt->step();
    }
    for (size_t i = 0; i < p0.size(); ++i) {
      EXPECT_NEAR(at(p, static_cast<int64_t>(i)), expected[c][i].get<double>(), 1e-13) << "element " << i;
    }
  }
}

}  // namespace
}  // namespace deepspeed
