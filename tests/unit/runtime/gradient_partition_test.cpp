// ZeRO's fp32 gradient partition holds memory only from the first gradient of a step to the
// step itself, so it is not held through forward (where activations peak), as FSDP2 frees its
// sharded gradients; an offloaded (host) partition stays. The report says what is held.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

namespace deepspeed {
namespace {

struct TwoLayers : torch::nn::Module {
  TwoLayers() {
    a = register_module("a", torch::nn::Linear(16, 16));
    b = register_module("b", torch::nn::Linear(16, 1));
  }
  torch::Tensor forward(torch::Tensor x) { return b->forward(torch::tanh(a->forward(x))).sum(-1); }
  torch::nn::Linear a{nullptr}, b{nullptr};
};

constexpr int64_t kParameters = 16 * 16 + 16 + 16 + 1;

class GradientPartition : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(GradientPartition, IsHeldFromBackwardToStepOnly) {
  const auto [stage, offload] = GetParam();
  torch::manual_seed(2);
  auto net = std::make_shared<TwoLayers>();
  nlohmann::json zero = {{"stage", stage}};
  if (offload) zero["offload_optimizer"] = {{"device", "cpu"}};
  InitializeOptions options;
  options.config_json = {{"train_batch_size", 4}, {"gradient_accumulation_steps", 2}, {"steps_per_print", 1000},
                         {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 0.01}}}}},
                         {"zero_optimization", zero}};
  auto engine = initialize(net, options).engine;
  const auto x = torch::randn({2, 16}).to(engine->device());
  const int64_t partition = kParameters * 4;  // one rank: the whole model, fp32
  const int64_t between_steps = offload ? partition : 0;
  EXPECT_EQ(engine->memory_report().gradients, between_steps) << "before the first backward";
  for (int step = 0; step < 2; ++step) {
    for (int micro = 0; micro < 2; ++micro) {
      engine->backward(engine->forward(x).pow(2).mean());
      const int64_t held = engine->memory_report().gradients;
      if (stage >= 2 || micro == 1) {
        // Reduced into the partition as backward went (stage 2) or at the boundary (stage 1).
        EXPECT_EQ(held, partition) << "micro batch " << micro;
      } else {
        EXPECT_EQ(held, partition + between_steps) << "stage 1 accumulates in .grad first";
      }
      engine->step();
    }
    EXPECT_EQ(engine->memory_report().gradients, between_steps) << "after step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, GradientPartition,
                         ::testing::Combine(::testing::Values(1, 2), ::testing::Bool()),
                         [](const auto& info) {
                           return "stage" + std::to_string(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "_offload" : "");
                         });

}  // namespace
}  // namespace deepspeed
