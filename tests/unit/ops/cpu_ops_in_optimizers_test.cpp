// The optimizers of src/optim on fp32 CPU tensors, where they hand the update to the CPU ops
// (ops/cpu/): the same results as their torch expressions run in float64 (within float
// rounding: 1e-5 * max(1, |x|) after 5 steps), the same state (keys, dtypes, shapes, step
// count), the torch path kept for everything the ops do not take, and autograd still told
// that the parameter changed.
//
// Which path ran is observed through the dispatcher: with DS_CPU_SIMD set to a name that is
// not a level, an op call throws SimdError and the torch expression never does.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "cpu/common/simd_level.h"
#include "deepspeed/optimizer.h"
#include "scoped_env.h"

namespace deepspeed {
namespace {

using deepspeed::testing::ScopedEnv;

using nlohmann::json;

constexpr int kSteps = 5;
constexpr int64_t kSize = 1000 + 3;


std::unique_ptr<Optimizer> make(const std::string& type, const json& params, torch::Tensor p) {
  ParamGroup g;
  g.params = {p};
  return make_optimizer(type, params, {g});
}

torch::Tensor grad_at(int step, torch::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + step);
  return torch::rand({kSize}, gen, torch::TensorOptions().dtype(torch::kDouble))
      .mul_(2)
      .sub_(1)
      .to(dtype);
}

struct Case {
  std::string type;
  json params;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"AdamW", {{"lr", 0.01}, {"weight_decay", 0.1}}},
      {"Adam", {{"lr", 0.01}, {"weight_decay", 0.1}, {"adam_w_mode", false}}},
      {"Adam", {{"lr", 0.01}, {"bias_correction", false}, {"betas", {0.8, 0.99}}}},
      {"Adagrad",
       {{"lr", 0.1},
        {"lr_decay", 0.05},
        {"weight_decay", 0.01},
        {"initial_accumulator_value", 0.2},
        {"eps", 1e-6}}},
      {"Adagrad", {{"lr", 0.1}, {"maximize", true}}},
      {"Lion", {{"lr", 0.01}, {"weight_decay", 0.1}, {"betas", {0.9, 0.99}}}},
  };
  return all;
}

TEST(CpuOpsInOptimizers, Fp32MatchesTheTorchExpressionInFloat64AndKeepsTheState) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.type + " " + c.params.dump());
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const torch::Tensor start = torch::rand({kSize}, gen, torch::kDouble).mul_(2).sub_(1);
    torch::Tensor p32 = start.to(torch::kFloat);
    torch::Tensor p64 = start.clone();
    auto opt32 = make(c.type, c.params, p32);
    auto opt64 = make(c.type, c.params, p64);
    for (int s = 0; s < kSteps; ++s) {
      p32.mutable_grad() = grad_at(s, torch::kFloat);
      p64.mutable_grad() = grad_at(s, torch::kDouble);
      opt32->step();
      opt64->step();
    }
    const double err =
        (p32.to(torch::kDouble) - p64).abs().div(p64.abs().clamp_min(1.0)).max().item<double>();
    EXPECT_LE(err, 1e-5);

    const auto& s32 = opt32->state().at(0);
    const auto& s64 = opt64->state().at(0);
    ASSERT_EQ(s32.size(), s64.size());
    for (const auto& [key, value] : s64) {
      ASSERT_TRUE(s32.count(key)) << key;
      const torch::Tensor& mine = s32.at(key);
      EXPECT_EQ(mine.sizes(), value.sizes()) << key;
      if (key == "step") {
        EXPECT_EQ(mine.scalar_type(), torch::kFloat);
        EXPECT_EQ(mine.item<double>(), kSteps);
      } else {
        EXPECT_EQ(mine.scalar_type(), torch::kFloat) << key;
        const double state_err = (mine.to(torch::kDouble) - value)
                                     .abs()
                                     .div(value.abs().clamp_min(1.0))
                                     .max()
                                     .item<double>();
        EXPECT_LE(state_err, 1e-5) << key;
      }
    }
  }
}

TEST(CpuOpsInOptimizers, Fp32ContiguousCpuTensorsGoThroughTheOps) {
  ScopedEnv env(ops::kSimdLevelEnv, "not-a-level");
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.type + " " + c.params.dump());
    torch::Tensor p = torch::ones({kSize});
    auto opt = make(c.type, c.params, p);
    p.mutable_grad() = grad_at(0, torch::kFloat);
    EXPECT_THROW(opt->step(), ops::SimdError);
  }
}

TEST(CpuOpsInOptimizers, EverythingElseKeepsTheTorchExpression) {
  ScopedEnv env(ops::kSimdLevelEnv, "not-a-level");
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.type + " " + c.params.dump());
    // float64, bf16 and a strided fp32 view: the ops take none of them.
    for (torch::Tensor p : {torch::ones({kSize}, torch::kDouble),
                            torch::ones({kSize}, torch::kBFloat16), torch::ones({64, 32}).t()}) {
      auto opt = make(c.type, c.params, p);
      p.mutable_grad() = torch::full_like(p, 0.5);
      EXPECT_NO_THROW(opt->step()) << p.scalar_type() << " contiguous=" << p.is_contiguous();
      EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
    }
  }
  // torch_adam keeps torch's formula, even for fp32 CPU tensors.
  torch::Tensor p = torch::ones({kSize});
  auto opt = make("AdamW", {{"torch_adam", true}}, p);
  p.mutable_grad() = torch::full_like(p, 0.5);
  EXPECT_NO_THROW(opt->step());
}

TEST(CpuOpsInOptimizers, AutogradSeesTheParameterChange) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.type + " " + c.params.dump());
    torch::Tensor p = torch::ones({kSize}, torch::requires_grad());
    auto opt = make(c.type, c.params, p);
    (p * p).sum().backward();
    const auto version = p._version();
    const torch::Tensor loss = (p * p).sum();  // saves p for its backward
    opt->step();
    EXPECT_GT(p._version(), version);
    // As with torch's in-place update: the saved p is stale, and backward says so.
    EXPECT_THROW(loss.backward(), c10::Error);
  }
}

}  // namespace
}  // namespace deepspeed
