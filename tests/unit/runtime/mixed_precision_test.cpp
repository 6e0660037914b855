// fp16 and bf16 through the engine, in one process: the loss scale follows DeepSpeed's
// algorithm for the stage (Plain at stage 0, Zero with hysteresis at stages 1-2) while inf/nan
// gradients are injected at chosen steps; overflowed steps are skipped (parameters, masters
// and LR schedule untouched, skipped_steps grows, global steps advance); fp32 masters keep
// updates too small for fp16; bf16 follows the fp32 loss curve; and the combinations
// DeepSpeed refuses fail at initialize with the key named.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include <deepspeed/deepspeed.h>

#include "multiprocess.h"
#include "runtime/step/loss_scaler.h"
#include "runtime/step/precision.h"
#include "scoped_env.h"

namespace deepspeed {
namespace {

// Element-wise only: LibTorch 1.13 has no fp16 matmul on the CPU, but has fp16 mul and sum.
struct Elementwise : torch::nn::Module {
  Elementwise() {
    w = register_parameter("w", torch::ones({4}));
    b = register_parameter("b", torch::zeros({1}));
  }
  torch::Tensor forward(torch::Tensor x) { return (x * w).sum(-1) + b; }
  torch::Tensor w, b;
};

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 32));
    fc2 = register_module("fc2", torch::nn::Linear(32, 1));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::relu(fc1->forward(x))).squeeze(-1); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

nlohmann::json base_config(int stage) {
  auto c = nlohmann::json::parse(R"({"train_batch_size": 4, "steps_per_print": 1000,
      "optimizer": {"type": "Adam", "params": {"lr": 0.01}},
      "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0.001, "warmup_max_lr": 0.01,
                                                   "warmup_num_steps": 10, "warmup_type": "linear"}}})");
  c["zero_optimization"] = {{"stage", stage}};
  return c;
}

template <typename Module>
InitializeResult start(std::shared_ptr<Module> net, const nlohmann::json& config) {
  // Element-wise models: LibTorch 1.13 does their fp16 on the CPU (precision.h).
  const testing::ScopedEnv allow_cpu_fp16(kAllowCpuFp16Env, "1");
  InitializeOptions options;
  options.config_json = config;
  return initialize(net, options);
}

std::vector<torch::Tensor> snapshot(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

bool same(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

// Trains `steps` steps, multiplying the loss by inf at the steps in `overflow` (so that every
// gradient is inf or nan), and checks each step against a reference LossScaler.
void run_injected(int stage, const std::set<int>& overflow, int steps) {
  torch::manual_seed(0);
  auto net = std::make_shared<Elementwise>();
  auto config = base_config(stage);
  config["fp16"] = {{"enabled", true}, {"initial_scale_power", 4}, {"loss_scale_window", 2}, {"hysteresis", 2}};
  auto [engine, optimizer, loader, scheduler] = start(net, config);
  EXPECT_EQ(engine->model_dtype(), torch::kFloat16);
  EXPECT_EQ(net->w.scalar_type(), torch::kFloat16);
  EXPECT_EQ(engine->optimizer_wrapper_name(), stage == 0 ? "FP16_Optimizer" : "DeepSpeedZeroOptimizer");

  LossScalerOptions ro;
  ro.dynamic = true;
  ro.initial_scale = 16;
  ro.scale_window = 2;
  ro.hysteresis = 2;
  ro.algorithm = stage == 0 ? LossScaleAlgorithm::Plain : LossScaleAlgorithm::Zero;
  LossScaler reference(ro);
  EXPECT_EQ(engine->cur_scale(), 16.0);

  auto x = torch::randn({4, 4});
  auto y = torch::randn({4});
  // The schedule the engine's should follow: stepped once per applied step only.
  std::vector<ParamGroup> twin_groups(1);
  twin_groups[0].params.push_back(torch::zeros({1}));
  auto twin = make_optimizer("Adam", {{"lr", 0.01}}, twin_groups);
  auto twin_schedule = make_lr_scheduler("WarmupLR", config["scheduler"]["params"], *twin);
  for (int step = 0; step < steps; ++step) {
    const auto before = snapshot(*net);
    const double lr_before = engine->get_lr()[0];
    auto loss = torch::mse_loss(engine->forward(x.to(engine->device(), torch::kFloat16)).to(torch::kFloat32),
                                y.to(engine->device()));
    if (overflow.count(step)) loss = loss * std::numeric_limits<float>::infinity();
    engine->backward(loss);
    engine->step();
    reference.update(overflow.count(step) > 0);
    EXPECT_EQ(engine->cur_scale(), reference.scale()) << "stage " << stage << " step " << step;
    EXPECT_EQ(engine->was_step_applied(), overflow.count(step) == 0) << "step " << step;
    if (overflow.count(step)) {
      EXPECT_TRUE(same(before, snapshot(*net))) << "a skipped step changed the parameters (step " << step << ")";
      EXPECT_EQ(engine->get_lr()[0], lr_before) << "the LR schedule stepped on an overflow (step " << step << ")";
    } else {
      twin_schedule->step();
      EXPECT_FALSE(same(before, snapshot(*net))) << "step " << step;
      EXPECT_TRUE(engine->get_global_grad_norm().has_value());
      EXPECT_EQ(engine->get_lr()[0], get_lr(*twin)[0]) << "step " << step;
    }
    for (const auto& p : net->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  }
  EXPECT_EQ(engine->global_steps(), steps);
  EXPECT_EQ(engine->skipped_steps(), static_cast<int64_t>(overflow.size()));
  EXPECT_EQ(engine->global_samples(), steps * 4);
}

TEST(MixedPrecision, Fp16Stage0ScaleFollowsThePlainAlgorithm) { run_injected(0, {1, 2, 5, 6, 7}, 14); }

TEST(MixedPrecision, Fp16ZeroScaleFollowsTheZeroAlgorithmWithHysteresis) {
  run_injected(1, {1, 2, 5, 6, 7}, 14);
  run_injected(2, {0, 3, 4, 9}, 14);
}

// The loss scaler's state (scale, iteration, last overflow, hysteresis) and the fp32 masters
// survive a checkpoint: a loaded engine goes on exactly as the one that saved.
TEST(MixedPrecision, CheckpointKeepsTheLossScalerAndMasters) {
  for (int stage : {0, 1}) {
    testing::TempDir dir;
    auto config = base_config(stage);
    config["fp16"] = {{"enabled", true}, {"initial_scale_power", 6}, {"loss_scale_window", 3}, {"hysteresis", 2}};
    torch::manual_seed(1);
    auto net = std::make_shared<Elementwise>();
    auto a = start(net, config).engine;
    auto x = torch::randn({4, 4}).to(a->device(), torch::kFloat16);
    auto train = [&](Engine& e, bool overflow) {
      auto loss = e.forward(x).to(torch::kFloat32).pow(2).mean();
      if (overflow) loss = loss * std::numeric_limits<float>::infinity();
      e.backward(loss);
      e.step();
    };
    for (int s = 0; s < 7; ++s) train(*a, s == 1 || s == 2);
    a->save_checkpoint(dir.path());
    auto b = start(std::make_shared<Elementwise>(), config).engine;
    ASSERT_TRUE(b->load_checkpoint(dir.path()).load_path.has_value());
    EXPECT_EQ(b->cur_scale(), a->cur_scale()) << "stage " << stage;
    EXPECT_EQ(b->skipped_steps(), 2);
    // Identical futures: same scale changes (growth and overflow) and the same parameters.
    for (int s = 0; s < 8; ++s) {
      train(*a, s == 4);
      train(*b, s == 4);
      EXPECT_EQ(b->cur_scale(), a->cur_scale()) << "stage " << stage << " step " << s;
    }
    EXPECT_TRUE(same(snapshot(*a->module()), snapshot(*b->module()))) << "stage " << stage;
  }
}

TEST(MixedPrecision, ZeroOverflowAtTheMinimumScaleIsAnError) {
  auto net = std::make_shared<Elementwise>();
  auto config = base_config(1);
  config["fp16"] = {{"enabled", true}, {"initial_scale_power", 1}, {"hysteresis", 1}, {"min_loss_scale", 1}};
  auto [engine, optimizer, loader, scheduler] = start(net, config);
  auto x = torch::randn({4, 4}).to(engine->device(), torch::kFloat16);
  auto step = [&] {
    auto loss = engine->forward(x).to(torch::kFloat32).sum() * std::numeric_limits<float>::infinity();
    engine->backward(loss);
    engine->step();
  };
  step();  // 2 -> 1
  EXPECT_EQ(engine->cur_scale(), 1.0);
  try {
    step();
    FAIL() << "expected an error at the minimum loss scale";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("Current loss scale already at minimum"), std::string::npos) << e.what();
  }
}

TEST(MixedPrecision, Fp16MastersKeepUpdatesBelowHalfPrecision) {
  // 1e-4 per step is below fp16's resolution at 1.0 (2^-10): only fp32 masters accumulate it.
  auto net = std::make_shared<Elementwise>();
  auto config = base_config(0);
  config.erase("scheduler");
  config["optimizer"] = {{"type", "SGD"}, {"params", {{"lr", 1e-4}}}};
  config["fp16"] = {{"enabled", true}, {"loss_scale", 128}};
  auto [engine, optimizer, loader, scheduler] = start(net, config);
  EXPECT_EQ(engine->cur_scale(), 128.0);
  for (int i = 0; i < 40; ++i) {
    // d(sum(w))/dw = 1 for every weight: SGD subtracts lr each step.
    auto loss = engine->forward(torch::ones({1, 4}, torch::kFloat16).to(engine->device())).to(torch::kFloat32).sum();
    engine->backward(loss);
    engine->step();
  }
  const auto master = optimizer->param_groups()[0].params[0];
  EXPECT_EQ(master.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(master[0].item<double>(), 1.0 - 40 * 1e-4, 1e-6);
  EXPECT_NEAR(net->w[0].item<double>(), 0.996, 1e-3);
  EXPECT_LT(net->w[0].item<double>(), 1.0);
}

TEST(MixedPrecision, AutoCastCastsFloatingInputs) {
  auto net = std::make_shared<Elementwise>();
  auto config = base_config(0);
  config["fp16"] = {{"enabled", true}, {"auto_cast", true}};
  auto [engine, optimizer, loader, scheduler] = start(net, config);
  auto out = engine->forward(torch::randn({2, 4}).to(engine->device()));
  EXPECT_EQ(out.scalar_type(), torch::kFloat16);
}

// torch_autocast: fp32 parameters, the forward's matrix products in bf16, and autocast off
// again once the forward returns (also when it throws).
TEST(MixedPrecision, TorchAutocastRunsTheForwardInLowerPrecision) {
  auto net = std::make_shared<Mlp>();
  auto config = base_config(0);
  config["torch_autocast"] = {{"enabled", true}, {"dtype", "bfloat16"}};
  auto [engine, optimizer, loader, scheduler] = start(net, config);
  EXPECT_EQ(engine->model_dtype(), torch::kFloat32);
  auto x = torch::randn({4, 8}).to(engine->device());
  auto out = engine->forward(x);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(net->fc1->weight.scalar_type(), torch::kFloat32);
  EXPECT_EQ(torch::matmul(x, x.t()).scalar_type(), torch::kFloat32) << "autocast stayed on after the forward";
  engine->backward(out.to(torch::kFloat32).pow(2).mean());
  engine->step();
  EXPECT_EQ(net->fc1->weight.grad().defined() ? net->fc1->weight.grad().scalar_type() : torch::kFloat32,
            torch::kFloat32);
  EXPECT_THROW(engine->forward(torch::randn({4, 3}).to(engine->device())), c10::Error);
  EXPECT_EQ(torch::matmul(x, x.t()).scalar_type(), torch::kFloat32) << "autocast stayed on after a throwing forward";

  auto bad = base_config(0);
  bad["torch_autocast"] = {{"enabled", true}};
  bad["bf16"] = {{"enabled", true}};
  EXPECT_THROW(start(std::make_shared<Mlp>(), bad), ConfigError);
}

// bf16 with fp32 gradient accumulation at stage 1: every micro batch goes into the fp32
// partitions (no bf16 .grad is left between micro batches), and training still follows fp32.
TEST(MixedPrecision, Bf16WithFp32AccumulationAtStage1) {
  auto net = std::make_shared<Mlp>();
  auto config = base_config(1);
  config["gradient_accumulation_steps"] = 2;
  config["bf16"] = {{"enabled", true}};
  config["data_types"] = {{"grad_accum_dtype", "fp32"}};
  auto [engine, optimizer, loader, scheduler] = start(net, config);
  auto x = torch::randn({2, 8}).to(engine->device(), torch::kBFloat16);
  engine->backward(engine->forward(x).to(torch::kFloat32).pow(2).mean());
  const auto m = engine->memory_report();
  EXPECT_EQ(m.gradients, m.master_weights) << "only the fp32 partition of the gradients is held";
  engine->step();
  EXPECT_FALSE(engine->was_step_applied());
  engine->backward(engine->forward(x).to(torch::kFloat32).pow(2).mean());
  engine->step();
  EXPECT_TRUE(engine->was_step_applied());
}

std::vector<double> losses(const nlohmann::json& config, int steps) {
  torch::manual_seed(3);
  auto net = std::make_shared<Mlp>();
  auto [engine, optimizer, loader, scheduler] = start(net, config);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto x = torch::randn({64, 8}, gen);
  auto y = torch::matmul(x, torch::randn({8}, gen));
  std::vector<double> out;
  for (int s = 0; s < steps; ++s) {
    auto xb = x.narrow(0, (s * 4) % 64, 4).to(engine->device(), engine->model_dtype());
    auto loss = torch::mse_loss(engine->forward(xb).to(torch::kFloat32), y.narrow(0, (s * 4) % 64, 4).to(engine->device()));
    engine->backward(loss);
    engine->step();
    out.push_back(loss.item<double>());
  }
  return out;
}

TEST(MixedPrecision, Bf16FollowsTheFp32LossCurve) {
  for (int stage : {0, 2}) {
    auto fp32 = base_config(stage);
    fp32.erase("scheduler");
    auto bf16 = fp32;
    bf16["bf16"] = {{"enabled", true}};
    const auto a = losses(fp32, 60);
    const auto b = losses(bf16, 60);
    // Stated tolerance: every step's loss within 5% + 0.02 of fp32's, and the same progress.
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_NEAR(b[i], a[i], 0.05 * a[i] + 0.02) << "stage " << stage << " step " << i;
    }
    const double first = (a[0] + a[1] + a[2] + a[3]) / 4, last = (a[56] + a[57] + a[58] + a[59]) / 4;
    const double first16 = (b[0] + b[1] + b[2] + b[3]) / 4, last16 = (b[56] + b[57] + b[58] + b[59]) / 4;
    EXPECT_LT(last, first * 0.8) << "fp32 did not learn; the comparison would say nothing";
    EXPECT_LT(last16, first16 * 0.8);
  }
}

TEST(MixedPrecision, WrapperNames) {
  auto name = [](nlohmann::json c) { return start(std::make_shared<Mlp>(), c).engine->optimizer_wrapper_name(); };
  auto c = base_config(0);
  EXPECT_EQ(name(c), "FusedAdam");
  c["bf16"] = {{"enabled", true}};
  EXPECT_EQ(name(c), "BF16_Optimizer");
  c["zero_optimization"]["stage"] = 1;
  EXPECT_EQ(name(c), "DeepSpeedZeroOptimizer");
}

template <typename Fn>
std::string config_error_path(Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.path();
  }
  return "(no error)";
}

TEST(MixedPrecision, UnsupportedCombinationsFailAtInitialize) {
  auto attempt = [](nlohmann::json c) { return [c] { start(std::make_shared<Mlp>(), c); }; };
  auto c = base_config(0);
  c["amp"] = {{"enabled", true}};
  EXPECT_EQ(config_error_path(attempt(c)), "amp.enabled");
  c = base_config(0);
  c["bf16"] = {{"enabled", true}};
  c["data_types"] = {{"grad_accum_dtype", "fp32"}};
  EXPECT_EQ(config_error_path(attempt(c)), "data_types.grad_accum_dtype");
  c["zero_optimization"]["stage"] = 1;  // ZeRO accepts the mix
  EXPECT_EQ(config_error_path(attempt(c)), "(no error)");
  c = base_config(0);
  c["zero_optimization"]["offload_optimizer"] = {{"device", "cpu"}};
  EXPECT_EQ(config_error_path(attempt(c)), "zero_optimization.offload_optimizer");
  c = base_config(2);
  c["zero_optimization"]["offload_param"] = {{"device", "cpu"}};  // needs stage 3
  EXPECT_EQ(config_error_path(attempt(c)), "zero_optimization.offload_param");
  c = base_config(3);
  EXPECT_EQ(config_error_path(attempt(c)), "(no error)");
  c = base_config(2);
  c["optimizer"] = {{"type", "Lamb"}};
  EXPECT_EQ(config_error_path(attempt(c)), "optimizer.type");
  c["zero_allow_untested_optimizer"] = true;
  EXPECT_EQ(config_error_path(attempt(c)), "(no error)");
}

}  // namespace
}  // namespace deepspeed
