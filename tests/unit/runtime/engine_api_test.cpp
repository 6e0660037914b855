// The engine's API for any model, and its errors for misuse, in one process: forward returns
// what the model returns (tuples, IValues, overloaded forwards through ModelEngine; a clear
// error naming the type through the type-erased Engine), eval()/train() and module(); step()
// without a backward(), fp16 on the CPU, bf16 with fp32 inputs, and optimizer or scheduler
// params that are wrong in a config file each give an error that says what to do.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

#include "multiprocess.h"
#include "runtime/step/precision.h"
#include "scoped_env.h"

namespace deepspeed {
// A named namespace: this binary's test files are compiled together (unity build).
namespace engine_api_test {

using testing::ScopedEnv;

nlohmann::json sgd_config() {
  return nlohmann::json::parse(R"({"train_batch_size": 2, "steps_per_print": 1000,
                                   "optimizer": {"type": "SGD", "params": {"lr": 0.1}}})");
}

template <typename Net>
ModelInitializeResult<Net> start(std::shared_ptr<Net> net, nlohmann::json config = sgd_config()) {
  InitializeOptions options;
  options.config_json = std::move(config);
  return initialize(net, options);
}

struct TupleNet : torch::nn::Module {
  TupleNet() { fc = register_module("fc", torch::nn::Linear(4, 2)); }
  std::tuple<torch::Tensor, torch::Tensor> forward(torch::Tensor x) {
    auto y = fc->forward(x);
    return {y, y.pow(2).mean()};
  }
  torch::nn::Linear fc{nullptr};
};

// Two forwards: torch::nn::AnyModule cannot hold it, ModelEngine calls either.
struct OverloadedNet : torch::nn::Module {
  OverloadedNet() { fc = register_module("fc", torch::nn::Linear(4, 1)); }
  torch::Tensor forward(torch::Tensor x) { return fc->forward(x); }
  torch::Tensor forward(torch::Tensor x, double scale) { return fc->forward(x) * scale; }
  torch::nn::Linear fc{nullptr};
};

struct IValueNet : torch::nn::Module {
  IValueNet() { fc = register_module("fc", torch::nn::Linear(4, 1)); }
  c10::IValue forward(const torch::Tensor& x) {
    auto y = fc->forward(x);
    return c10::ivalue::Tuple::create({y, y.sum()});
  }
  torch::nn::Linear fc{nullptr};
};

struct DropoutNet : torch::nn::Module {
  DropoutNet() {
    fc = register_module("fc", torch::nn::Linear(16, 16));
    drop = register_module("drop", torch::nn::Dropout(0.5));
  }
  torch::Tensor forward(torch::Tensor x) { return drop->forward(fc->forward(x)); }
  torch::nn::Linear fc{nullptr};
  torch::nn::Dropout drop{nullptr};
};

struct Linear4 : torch::nn::Module {
  Linear4() { fc = register_module("fc", torch::nn::Linear(4, 1)); }
  torch::Tensor forward(torch::Tensor x) { return fc->forward(x); }
  torch::nn::Linear fc{nullptr};
};

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(EngineApi, ModelEngineReturnsTheModelsTuple) {
  auto net = std::make_shared<TupleNet>();
  auto [engine, optimizer, loader, scheduler] = start(net);
  const auto x = torch::randn({2, 4});
  auto [y, loss] = engine->forward(x);
  EXPECT_EQ(y.sizes(), (torch::IntArrayRef{2, 2}));
  engine->backward(loss);
  engine->step();
  EXPECT_EQ(engine->global_steps(), 1);
  EXPECT_EQ(engine->module()->fc->weight.sizes(), (torch::IntArrayRef{2, 4})) << "module() is the model's own type";
}

TEST(EngineApi, TypeErasedForwardTakesTheTypeOrNamesIt) {
  auto net = std::make_shared<TupleNet>();
  auto result = start(net);
  Engine& engine = *result.engine;
  const auto x = torch::randn({2, 4});
  auto [y, loss] = engine.forward<std::tuple<torch::Tensor, torch::Tensor>>(x);
  EXPECT_TRUE(loss.requires_grad());
  const std::string error = error_of([&] { engine.forward(x); });
  EXPECT_NE(error.find("the model's forward returns std::tuple<at::Tensor, at::Tensor>, not at::Tensor"),
            std::string::npos)
      << error;
}

TEST(EngineApi, OverloadedForwardGoesThroughModelEngine) {
  auto net = std::make_shared<OverloadedNet>();
  auto [engine, optimizer, loader, scheduler] = start(net);
  const auto x = torch::randn({2, 4});
  EXPECT_TRUE(torch::allclose(engine->forward(x, 2.0), engine->forward(x) * 2.0));
  const std::string error = error_of([&] { static_cast<Engine&>(*engine).forward(x); });
  EXPECT_NE(error.find("call forward on the ModelEngine"), std::string::npos) << error;
}

TEST(EngineApi, IValueResultsTrain) {
  auto net = std::make_shared<IValueNet>();
  auto [engine, optimizer, loader, scheduler] = start(net);
  const c10::IValue out = engine->forward(torch::randn({2, 4}));
  ASSERT_TRUE(out.isTuple());
  engine->backward(out.toTuple()->elements()[1].toTensor());
  engine->step();
  EXPECT_EQ(engine->global_steps(), 1);
}

TEST(EngineApi, EvalAndTrainSwitchTheModule) {
  auto net = std::make_shared<DropoutNet>();
  auto [engine, optimizer, loader, scheduler] = start(net);
  const auto x = torch::ones({2, 16});
  engine->eval();
  EXPECT_FALSE(engine->module()->is_training());
  EXPECT_TRUE(torch::equal(engine->forward(x), engine->forward(x))) << "no dropout in eval mode";
  engine->train();
  EXPECT_TRUE(engine->module()->is_training());
  EXPECT_FALSE(torch::equal(engine->forward(x), engine->forward(x))) << "dropout in training mode";
}

TEST(EngineApi, StepWithoutBackwardIsAnError) {
  auto net = std::make_shared<Linear4>();
  auto [engine, optimizer, loader, scheduler] = start(net);
  const std::string first = error_of([&] { engine->step(); });
  EXPECT_NE(first.find("step() at micro step 0 without a backward() since the last step(): call "
                       "engine->backward(loss) for every micro batch, then engine->step()"),
            std::string::npos)
      << first;
  EXPECT_EQ(engine->global_steps(), 0) << "nothing was counted";
  engine->backward(engine->forward(torch::randn({2, 4})).sum());
  engine->step();
  EXPECT_EQ(engine->global_steps(), 1);
  EXPECT_NE(error_of([&] { engine->step(); }).find("micro step 1 without a backward()"), std::string::npos);
}

TEST(EngineApi, NoSyncRefusalsNeedNoPeers) {
  auto net = std::make_shared<Linear4>();
  auto config = sgd_config();
  config["optimizer"] = {{"type", "Adam"}, {"params", {{"lr", 0.01}}}};
  config["zero_optimization"] = {{"stage", 2}};
  auto [engine, optimizer, loader, scheduler] = start(net, config);
  EXPECT_EQ(error_of([&] { auto guard = engine->no_sync(); }),
            "no_sync context manager is incompatible with gradient partitioning logic of ZeRO stage 2");
}

bool cpu_half_matmul_works() {
  try {
    const auto one = torch::ones({1, 1}, torch::kHalf);
    torch::mm(one, one);
    return true;
  } catch (const c10::Error&) {
    return false;
  }
}

TEST(EngineApi, Fp16OnTheCpuIsRefusedAtInitializeWithWhatToUse) {
  if (cpu_half_matmul_works()) GTEST_SKIP() << "this LibTorch multiplies half matrices on the CPU";
  auto config = sgd_config();
  config["fp16"] = {{"enabled", true}};
  const std::string error = error_of([&] { start(std::make_shared<Linear4>(), config); });
  EXPECT_NE(error.find("fp16.enabled: fp16 on the CPU: this LibTorch"), std::string::npos) << error;
  EXPECT_NE(error.find("not implemented for 'Half'"), std::string::npos) << error;
  EXPECT_NE(error.find("Use \"bf16\": {\"enabled\": true} or fp32 on the CPU, or train on a GPU"), std::string::npos)
      << error;
  // An element-wise model may insist.
  ScopedEnv allow(kAllowCpuFp16Env, "1");
  EXPECT_EQ(error_of([&] { start(std::make_shared<Linear4>(), config); }), "<no error>");
}

TEST(EngineApi, Bf16WithFp32InputsSaysWhatToDoAndAutoCastDoesIt) {
  auto config = sgd_config();
  config["bf16"] = {{"enabled", true}};
  {
    auto [engine, optimizer, loader, scheduler] = start(std::make_shared<Linear4>(), config);
    const std::string error = error_of([&] { engine->forward(torch::randn({2, 4})); });
    EXPECT_NE(error.find("forward: the model's parameters are BFloat16 (bf16.enabled) but tensor argument 0 is Float"),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("x.to(engine->device(), engine->model_dtype())"), std::string::npos) << error;
    EXPECT_NE(error.find("\"fp16\": {\"auto_cast\": true}"), std::string::npos) << error;
    EXPECT_EQ(error.find("frame #"), std::string::npos) << "no LibTorch stack trace: " << error;
  }
  config["fp16"] = {{"auto_cast", true}};
  auto [engine, optimizer, loader, scheduler] = start(std::make_shared<Linear4>(), config);
  EXPECT_EQ(engine->forward(torch::randn({2, 4})).scalar_type(), torch::kBFloat16);
}

TEST(EngineApi, OptimizerAndSchedulerParamErrorsPointIntoTheFile) {
  testing::TempDir dir;
  const std::string path = dir.file("ds_config.json");
  testing::write_file(path, "{\n  \"train_batch_size\": 2,\n  \"optimizer\": {\"type\": \"Adam\",\n"
                            "    \"params\": {\"lr\": -1}}\n}\n");
  InitializeOptions options;
  options.config = path;
  auto net = std::make_shared<Linear4>();
  std::string error = error_of([&] { initialize(net, options); });
  EXPECT_NE(error.find("optimizer.params.lr: Invalid learning rate: -1"), std::string::npos) << error;
  EXPECT_NE(error.find("(at " + path + ":4:"), std::string::npos) << error;

  testing::write_file(path, "{\n  \"train_batch_size\": 2,\n  \"optimizer\": {\"type\": \"Adam\"},\n"
                            "  \"scheduler\": {\"type\": \"OneCycle\",\n    \"params\": {\"cycle_min_lr\": 0.1}}\n}\n");
  error = error_of([&] { initialize(net, options); });
  EXPECT_NE(error.find("scheduler.params"), std::string::npos) << error;
  EXPECT_NE(error.find("(at " + path + ":"), std::string::npos) << error;
}

}  // namespace engine_api_test
}  // namespace deepspeed
