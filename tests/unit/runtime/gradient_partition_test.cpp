// ZeRO's gradient partition holds memory only from the first gradient of a step to the step
// itself, so it is not held through forward (where activations peak), as FSDP2 frees its
// sharded gradients; an offloaded (host) partition stays. The report says what is held. A
// half-precision model's partition is kept in its dtype where nothing accumulates in it, and
// then trains bit for bit as the fp32 partition did.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

#include "partitioning/bucket_plan.h"
#include "runtime/step/precision.h"
#include "runtime/zero/gradient_partitions.h"
#include "scoped_env.h"

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

// Element-wise only: LibTorch 1.13 has no fp16 matmul on the CPU (and Gloo no bf16).
struct HalfSafeElementwise : torch::nn::Module {
  HalfSafeElementwise() {
    w = register_parameter("w", torch::linspace(-1, 1, 64));
    b = register_parameter("b", torch::zeros({1}));
  }
  torch::Tensor forward(torch::Tensor x) { return (x * w * (x * w + 1)).sum(-1) + b; }
  torch::Tensor w, b;
};

struct HalfRun {
  int64_t held_at_step = 0;  // gradient bytes the report gives just before each step
  std::vector<torch::Tensor> parameters;
};

HalfRun train_fp16(int stage, int gas, const char* grad_accum_dtype) {
  torch::manual_seed(3);
  auto net = std::make_shared<HalfSafeElementwise>();
  InitializeOptions options;
  options.config_json = {{"train_micro_batch_size_per_gpu", 2}, {"gradient_accumulation_steps", gas},
                         {"steps_per_print", 1000}, {"fp16", {{"enabled", true}, {"initial_scale_power", 4}}},
                         {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 0.01}}}}},
                         {"zero_optimization", {{"stage", stage}}}};
  if (grad_accum_dtype) (*options.config_json)["data_types"] = {{"grad_accum_dtype", grad_accum_dtype}};
  // Element-wise models: LibTorch 1.13 does their fp16 on the CPU (precision.h).
  const testing::ScopedEnv allow_cpu_fp16(kAllowCpuFp16Env, "1");
  auto engine = initialize(net, options).engine;
  HalfRun run;
  for (int step = 0; step < 4 * gas; ++step) {
    const auto x = torch::randn({2, 64}).to(engine->device(), torch::kHalf);
    engine->backward(engine->forward(x).pow(2).mean());
    if (engine->is_gradient_accumulation_boundary()) run.held_at_step = engine->memory_report().gradients;
    engine->step();
  }
  for (const auto& p : net->parameters()) run.parameters.push_back(p.detach().cpu().clone());
  return run;
}

// The store alone: a step's first slice of a bucket is written and later ones added (so the
// partitions are never zeroed in a pass of their own), complete() zeros only the buckets no
// slice reached, and clear() gives the memory back and makes the next slice a first one.
TEST(GradientPartitions, FirstSliceWrittenLaterAddedUnreachedZeroed) {
  const auto plan = plan_buckets({10, 6, 4}, {0, 0, 1}, /*bucket_elements=*/8, /*partitions=*/2);
  GradientPartitions::Options o;
  o.release_between_steps = true;
  GradientPartitions store(plan, /*groups=*/3, o);
  ASSERT_EQ(store.tensors().size(), 3u);
  EXPECT_EQ(store.tensors()[2].numel(), 0) << "a group without parameters has an empty partition";
  EXPECT_EQ(store.bytes_held(), 0) << "no memory before the first slice";
  ASSERT_GE(plan.buckets.size(), 3u);
  auto slice_of = [&](int64_t bucket, double value) { return torch::full({plan.buckets[bucket].slice}, value); };
  auto place_of = [&](int64_t bucket) {
    const auto& b = plan.buckets[bucket];
    return store.tensors()[b.group].narrow(0, b.group_offset / plan.partitions, b.slice);
  };
  store.accumulate(0, slice_of(0, 1.0));
  store.accumulate(0, slice_of(0, 2.0));
  store.accumulate(1, slice_of(1, 5.0));
  EXPECT_GT(store.bytes_held(), 0);
  store.complete();
  EXPECT_TRUE(torch::equal(place_of(0), slice_of(0, 3.0))) << "the second slice is added to the first";
  EXPECT_TRUE(torch::equal(place_of(1), slice_of(1, 5.0)));
  for (int64_t i = 2; i < static_cast<int64_t>(plan.buckets.size()); ++i) {
    EXPECT_TRUE(torch::equal(place_of(i), slice_of(i, 0.0))) << "bucket " << i << " had no slice: zero";
  }
  store.clear();
  EXPECT_EQ(store.bytes_held(), 0) << "released between steps";
  store.accumulate(0, slice_of(0, 7.0));
  store.complete();
  EXPECT_TRUE(torch::equal(place_of(0), slice_of(0, 7.0))) << "after clear() a slice is written, not added";

  GradientPartitions::Options kept;  // offloaded partitions stay between steps
  GradientPartitions host(plan, 3, kept);
  const auto held = host.bytes_held();
  EXPECT_GT(held, 0);
  host.clear();
  EXPECT_EQ(host.bytes_held(), held);
}

TEST(GradientPartitionDtype, HalfWhereNothingAccumulatesInItElseFp32) {
  constexpr int64_t elements = 64 + 1;
  EXPECT_EQ(train_fp16(1, 1, nullptr).held_at_step, elements * 2);
  EXPECT_EQ(train_fp16(1, 2, nullptr).held_at_step, elements * 2) << "stage 1 accumulates in .grad";
  EXPECT_EQ(train_fp16(2, 1, nullptr).held_at_step, elements * 2);
  EXPECT_EQ(train_fp16(2, 2, nullptr).held_at_step, elements * 4) << "stage 2 accumulates in the partition";
  EXPECT_EQ(train_fp16(2, 2, "fp16").held_at_step, elements * 2) << "asked to accumulate in fp16";
  EXPECT_EQ(train_fp16(2, 1, "fp32").held_at_step, elements * 4) << "asked to accumulate in fp32";
}

TEST(GradientPartitionDtype, HalfPartitionTrainsBitForBitAsFp32) {
  // One micro batch per step: the fp32 partition held the same fp16 values, converted.
  for (int stage : {1, 2}) {
    const auto half = train_fp16(stage, 1, nullptr);
    const auto fp32 = train_fp16(stage, 1, "fp32");
    ASSERT_EQ(half.held_at_step * 2, fp32.held_at_step) << "stage " << stage;
    EXPECT_FALSE(torch::equal(half.parameters[0], torch::linspace(-1, 1, 64).to(torch::kHalf))) << "it trained";
    for (size_t i = 0; i < half.parameters.size(); ++i) {
      EXPECT_TRUE(torch::equal(half.parameters[i], fp32.parameters[i])) << "stage " << stage << " parameter " << i;
    }
  }
}

// Stage 0 on one rank reduces nothing: no bucket buffers (at 1.3B they were 2.6 GB of GPU
// memory), and the gradients stay where backward put them.
TEST(GradientBuckets, NoneOnOneRankAtStageZero) {
  torch::manual_seed(2);
  auto net = std::make_shared<TwoLayers>();
  InitializeOptions options;
  options.config_json = {{"train_batch_size", 2}, {"steps_per_print", 1000},
                         {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 0.01}}}}}};
  auto engine = initialize(net, options).engine;
  EXPECT_EQ(engine->memory_report().communication_buffers, 0);
  const auto x = torch::randn({2, 16}).to(engine->device());
  const auto before = net->a->weight.detach().cpu().clone();
  engine->backward(engine->forward(x).pow(2).mean());
  EXPECT_EQ(engine->memory_report().gradients, kParameters * 4);
  engine->step();
  EXPECT_FALSE(torch::equal(before, net->a->weight.detach().cpu()));
  EXPECT_EQ(engine->memory_report().communication_buffers, 0);
}

INSTANTIATE_TEST_SUITE_P(Stages, GradientPartition,
                         ::testing::Combine(::testing::Values(1, 2), ::testing::Bool()),
                         [](const auto& info) {
                           return "stage" + std::to_string(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "_offload" : "");
                         });

}  // namespace
}  // namespace deepspeed
