// fp16 and bf16 on a GPU: a small MLP trained in fp16 (dynamic loss scale) and in bf16
// follows the fp32 loss curve, at stage 0 and under ZeRO-2, with fp32 masters.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

namespace deepspeed {
namespace {

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(32, 256));
    fc2 = register_module("fc2", torch::nn::Linear(256, 256));
    fc3 = register_module("fc3", torch::nn::Linear(256, 1));
  }
  torch::Tensor forward(torch::Tensor x) {
    return fc3->forward(torch::gelu(fc2->forward(torch::gelu(fc1->forward(x))))).squeeze(-1);
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
};

std::vector<double> losses(const nlohmann::json& precision, int stage, int steps) {
  torch::manual_seed(5);
  auto net = std::make_shared<Mlp>();
  auto config = nlohmann::json::parse(R"({"train_batch_size": 64, "steps_per_print": 1000,
      "optimizer": {"type": "AdamW", "params": {"lr": 0.001}}})");
  config["zero_optimization"] = {{"stage", stage}};
  config.update(precision);
  InitializeOptions options;
  options.config_json = config;
  auto engine = initialize(net, options).engine;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto x = torch::randn({1024, 32}, gen);
  auto y = torch::sin(x.narrow(1, 0, 4).sum(1)) + 0.1 * x.narrow(1, 4, 4).pow(2).sum(1);
  std::vector<double> out;
  for (int s = 0; s < steps; ++s) {
    const int64_t at = (s * 64) % 1024;
    auto xb = x.narrow(0, at, 64).to(engine->device(), engine->model_dtype());
    auto yb = y.narrow(0, at, 64).to(engine->device());
    auto loss = torch::mse_loss(engine->forward(xb).to(torch::kFloat32), yb);
    engine->backward(loss);
    engine->step();
    out.push_back(loss.item<double>());
  }
  EXPECT_EQ(engine->skipped_steps(), 0) << precision.dump();
  return out;
}

double mean(const std::vector<double>& v, size_t from, size_t n) {
  double s = 0;
  for (size_t i = from; i < from + n; ++i) s += v[i];
  return s / static_cast<double>(n);
}

class GpuMixedPrecision : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU on this machine";
  }
};

TEST_P(GpuMixedPrecision, HalfPrecisionFollowsFp32) {
  const int stage = GetParam();
  const int steps = 200;
  const auto fp32 = losses(nlohmann::json::object(), stage, steps);
  // initial_scale_power 12: a scale that does not overflow at the first steps, so that no
  // step is skipped and the curves can be compared step by step.
  const auto fp16 = losses({{"fp16", {{"enabled", true}, {"initial_scale_power", 12}}}}, stage, steps);
  const auto bf16 = losses({{"bf16", {{"enabled", true}}}}, stage, steps);
  // Stated tolerance: the mean loss over every 20-step window within 10% (+0.01) of fp32's.
  for (size_t w = 0; w + 20 <= fp32.size(); w += 20) {
    const double ref = mean(fp32, w, 20);
    EXPECT_NEAR(mean(fp16, w, 20), ref, 0.10 * ref + 0.01) << "fp16 stage " << stage << " steps " << w;
    EXPECT_NEAR(mean(bf16, w, 20), ref, 0.10 * ref + 0.01) << "bf16 stage " << stage << " steps " << w;
  }
  EXPECT_LT(mean(fp32, steps - 20, 20), 0.5 * mean(fp32, 0, 20)) << "fp32 did not learn; the comparison says nothing";
}

INSTANTIATE_TEST_SUITE_P(Stages, GpuMixedPrecision, ::testing::Values(0, 2),
                         [](const auto& info) { return "stage" + std::to_string(info.param); });

}  // namespace
}  // namespace deepspeed
