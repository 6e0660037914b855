// Frozen parameters (requires_grad false, as when fine-tuning part of a model) at every ZeRO
// stage: they stay out of the optimizer and keep their values, take the model's dtype like
// the others, and the trainable part trains. Under ZeRO-3 the engine moves them itself
// (partition_whole_parameters takes only the optimizer's).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

#include "multiprocess.h"
#include "train_on_one_batch.h"

namespace deepspeed {
namespace {

struct PartlyFrozen : torch::nn::Module {
  PartlyFrozen() {
    body = register_module("body", torch::nn::Linear(8, 32));
    head = register_module("head", torch::nn::Linear(32, 1));
    for (auto& p : body->parameters()) p.requires_grad_(false);
  }
  torch::Tensor forward(torch::Tensor x) { return head->forward(torch::tanh(body->forward(x))).squeeze(-1); }
  torch::nn::Linear body{nullptr}, head{nullptr};
};

class FrozenParameters : public ::testing::TestWithParam<int> {};

TEST_P(FrozenParameters, StayOutOfTheOptimizerKeepTheirValuesAndTheRestTrains) {
  const int stage = GetParam();
  torch::manual_seed(11);
  auto net = std::make_shared<PartlyFrozen>();
  const auto body_before = net->body->weight.detach().to(torch::kBFloat16);
  const auto head_before = net->head->weight.detach().to(torch::kBFloat16);
  auto config = nlohmann::json::parse(R"({"train_batch_size": 4, "steps_per_print": 1000, "bf16": {"enabled": true},
      "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
      "zero_optimization": {"stage3_param_persistence_threshold": 0}})");
  config["zero_optimization"]["stage"] = stage;
  InitializeOptions options;
  options.config_json = config;
  auto engine = initialize(net, options).engine;

  EXPECT_EQ(net->body->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(net->body->weight.device(), engine->device());
  EXPECT_FALSE(net->body->weight.requires_grad());
  int64_t optimized = 0;
  for (const auto& g : engine->optimizer()->param_groups()) {
    for (const auto& p : g.params) optimized += p.numel();
  }
  // Below ZeRO the groups hold the head's tensors; with it, this rank's fp32 partition (all of
  // it on one rank, padded to a multiple of the world size, which is 1 here).
  EXPECT_EQ(optimized, 32 + 1) << "the frozen body reached the optimizer";

  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto x = torch::randn({4, 8}, gen).to(engine->device(), torch::kBFloat16);
  const auto y = torch::randn({4}, gen).to(engine->device());
  const auto losses = testing::train_on_one_batch(*engine, x, y, 20);
  EXPECT_LT(losses.back(), 0.5 * losses.front());
  torch::Tensor head_after;
  {
    auto whole = engine->gathered_parameters();
    EXPECT_TRUE(torch::equal(net->body->weight.to(torch::kCPU), body_before)) << "a frozen weight changed";
    head_after = net->head->weight.to(torch::kCPU);
    EXPECT_FALSE(torch::equal(head_after, head_before)) << "the trainable head did not train";
  }

  // A checkpoint brings both back into a fresh model.
  testing::TempDir dir;
  engine->save_checkpoint(dir.path());
  torch::manual_seed(99);
  auto fresh = std::make_shared<PartlyFrozen>();
  auto resumed = initialize(fresh, options).engine;
  resumed->load_checkpoint(dir.path());
  auto whole = resumed->gathered_parameters();
  EXPECT_TRUE(torch::equal(fresh->body->weight.to(torch::kCPU), body_before)) << "the frozen weight was not restored";
  EXPECT_TRUE(torch::equal(fresh->head->weight.to(torch::kCPU), head_after)) << "the trained weight was not restored";
}

INSTANTIATE_TEST_SUITE_P(Stages, FrozenParameters, ::testing::Values(0, 1, 2, 3),
                         [](const auto& info) { return "stage" + std::to_string(info.param); });

}  // namespace
}  // namespace deepspeed
