// ZeRO-3 on a GPU partitions a model built on the CPU one parameter at a time as the engine
// starts: the model never lands on the device whole (what DeepSpeed's zero.Init is for), so a
// model larger than the GPU can be trained with parameter offload. And it still trains.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>
#include <deepspeed/version.h>

#include "train_on_one_batch.h"

#if DEEPSPEED_HAVE_CUDA_BUILD
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace deepspeed {
namespace {

constexpr int64_t kWidth = 1024;
constexpr int kLayers = 16;  // 16.8M parameters: 67 MB in fp32, 34 MB in bf16

struct Deep : torch::nn::Module {
  Deep() {
    for (int i = 0; i < kLayers; ++i) layers.push_back(register_module("fc" + std::to_string(i), torch::nn::Linear(kWidth, kWidth)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& l : layers) x = torch::tanh(l->forward(x));
    return x.mean(-1);
  }
  std::vector<torch::nn::Linear> layers;
};

TEST(GpuZeroStage3, AModelBuiltOnTheCpuNeverLandsOnTheDeviceWhole) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU on this machine";
#if DEEPSPEED_HAVE_CUDA_BUILD
  torch::manual_seed(3);
  auto net = std::make_shared<Deep>();
  // Buckets of about one layer, so that parameters come and go; the biases stay whole.
  auto config = nlohmann::json::parse(R"({"train_batch_size": 8, "steps_per_print": 1000, "bf16": {"enabled": true},
      "optimizer": {"type": "AdamW", "params": {"lr": 0.001}},
      "zero_optimization": {"stage": 3, "stage3_prefetch_bucket_size": 1100000,
                            "offload_param": {"device": "cpu"}, "offload_optimizer": {"device": "cpu"}}})");
  InitializeOptions options;
  options.config_json = config;
  torch::cuda::synchronize();
  const int device = 0;
  namespace alloc = c10::cuda::CUDACachingAllocator;
  alloc::resetPeakStats(device);
  const auto before = alloc::getDeviceStats(device).allocated_bytes[0].current;
  auto engine = initialize(net, options).engine;
  ASSERT_TRUE(engine->device().is_cuda());
  torch::cuda::synchronize();
  const auto stats = alloc::getDeviceStats(device);
  const int64_t model_bf16 = kLayers * (kWidth * kWidth + kWidth) * 2;
  const int64_t peak = stats.allocated_bytes[0].peak - before;
  EXPECT_GT(peak, 0);
  EXPECT_LT(peak, model_bf16 / 4) << "initialize held " << peak << " bytes on the GPU at once; the bf16 model is "
                                  << model_bf16;
  // Every weight is on the device in bf16 and released (the persistent biases have buckets of
  // their own).
  int whole = 0;
  for (const auto& l : net->layers) {
    EXPECT_TRUE(l->weight.is_cuda());
    EXPECT_EQ(l->weight.scalar_type(), torch::kBFloat16);
    whole += l->weight.storage().nbytes() > 0 ? 1 : 0;
  }
  EXPECT_EQ(whole, 0);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto x = torch::randn({8, kWidth}, gen).to(engine->device(), torch::kBFloat16);
  auto y = torch::randn({8}, gen).to(engine->device());
  const auto losses = testing::train_on_one_batch(*engine, x, y, 20);
  EXPECT_LT(losses.back(), losses.front());
  EXPECT_EQ(engine->skipped_steps(), 0);
#endif
}

// With both offloads the bf16 shards live in host memory beside the fp32 masters, and the CPU
// Adam op writes them in its own pass (no separate copy); the gradients reach the pinned
// partitions by copies that do not wait, and their norm (clipping) is summed on the GPU as
// they go by. The run must follow the one that keeps everything on the GPU (FusedAdam there,
// so equal up to float rounding), norms included.
TEST(GpuZeroStage3, OffloadedShardsWrittenByTheCpuOptimizerFollowTheOnDeviceRun) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU on this machine";
  struct Curve {
    std::vector<double> losses, norms;
  };
  auto run = [](bool offload) {
    torch::manual_seed(3);
    auto net = std::make_shared<Deep>();
    auto config = nlohmann::json::parse(R"({"train_batch_size": 8, "steps_per_print": 1000, "bf16": {"enabled": true},
        "optimizer": {"type": "AdamW", "params": {"lr": 0.001}}, "gradient_clipping": 0.01,
        "zero_optimization": {"stage": 3, "stage3_prefetch_bucket_size": 1100000}})");
    if (offload) {
      config["zero_optimization"]["offload_param"] = {{"device", "cpu"}, {"pin_memory", true}};
      config["zero_optimization"]["offload_optimizer"] = {{"device", "cpu"}, {"pin_memory", true}};
    }
    InitializeOptions options;
    options.config_json = config;
    auto engine = initialize(net, options).engine;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    auto x = torch::randn({8, kWidth}, gen).to(engine->device(), torch::kBFloat16);
    auto y = torch::randn({8}, gen).to(engine->device());
    Curve c;
    for (int step = 0; step < 12; ++step) {
      c.losses.push_back(testing::train_on_one_batch(*engine, x, y, 1).front());
      c.norms.push_back(engine->get_global_grad_norm().value_or(-1.0));
    }
    return c;
  };
  const auto on_device = run(false);
  const auto offloaded = run(true);
  ASSERT_EQ(on_device.losses.size(), offloaded.losses.size());
  EXPECT_LT(offloaded.losses.back(), 0.9 * offloaded.losses.front());
  EXPECT_GT(on_device.norms.front(), 0.01) << "clipping is active (the first norm was 0.018 on an H100)";
  for (size_t i = 0; i < on_device.losses.size(); ++i) {
    EXPECT_NEAR(offloaded.losses[i], on_device.losses[i], 2e-2 * std::abs(on_device.losses[i]) + 1e-3) << "step " << i;
    // The two optimizers round differently in the last bit of the fp32 masters, and with
    // bf16 weights and updates clipped to a fixed size the trajectories part slowly: on an
    // H100 the norms agreed within 2 % through step 10 and were 21 % apart at step 11.
    const double tolerance = i < 8 ? 2e-2 : 0.3;
    EXPECT_NEAR(offloaded.norms[i], on_device.norms[i], tolerance * on_device.norms[i]) << "step " << i;
  }
}

}  // namespace
}  // namespace deepspeed
