// ZeRO-3 as the engine starts: only the persistent (small) parameters stay whole; every
// other parameter is released, including one that a plan without bucket classes would have
// put in the persistent parameters' always-gathered bucket.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

namespace deepspeed {
namespace {

struct FourLayers : torch::nn::Module {
  FourLayers() {
    for (int i = 0; i < 4; ++i) layers.push_back(register_module("fc" + std::to_string(i), torch::nn::Linear(64, 64)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& l : layers) x = torch::tanh(l->forward(x));
    return x.sum(-1);
  }
  std::vector<torch::nn::Linear> layers;
};

TEST(ZeroStage3Start, OnlyPersistentParametersStayWhole) {
  torch::manual_seed(5);
  auto net = std::make_shared<FourLayers>();
  // Biases (64 elements) are persistent, weights (4096) are not; buckets of 5000 elements.
  InitializeOptions options;
  options.config_json = nlohmann::json::parse(R"({"train_batch_size": 2, "steps_per_print": 1000,
      "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
      "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 100,
                            "stage3_prefetch_bucket_size": 5000}})");
  auto engine = initialize(net, options).engine;
  for (const auto& l : net->layers) {
    EXPECT_EQ(l->weight.storage().nbytes(), 0u) << "a weight stayed whole";
    EXPECT_GT(l->bias.storage().nbytes(), 0u) << "a persistent bias was released";
  }
  const auto x = torch::randn({2, 64}).to(engine->device());
  for (int step = 0; step < 2; ++step) {
    engine->backward(engine->forward(x).pow(2).mean());
    engine->step();
  }
  for (const auto& l : net->layers) EXPECT_EQ(l->weight.storage().nbytes(), 0u) << "released again after a step";
}

}  // namespace
}  // namespace deepspeed
