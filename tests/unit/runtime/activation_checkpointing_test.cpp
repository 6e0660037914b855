// deepspeed::checkpointing in one process: gradients through a checkpoint equal those without it
// bit for bit with dropout (the generators are restored for the recompute), whatever the
// function takes and returns; the saved inputs are released by backward; the RNG tracker's
// streams; configure()'s checks; initialize() configuring from the config section; profile's
// log lines.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

#include "runtime/activation_checkpointing/settings.h"

namespace deepspeed {
// A named namespace: this binary's test files are compiled together (unity build).
namespace activation_checkpointing_test {

namespace ckpt = checkpointing;

struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 8));
  }
  torch::Tensor forward(torch::Tensor x) {
    return x + fc2->forward(torch::dropout(torch::gelu(fc1->forward(x)), 0.3, is_training()));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Block);

struct Blocks {
  Blocks() {
    torch::manual_seed(5);
    for (int i = 0; i < 3; ++i) list->push_back(Block());
  }
  std::vector<torch::Tensor> grads() const {
    std::vector<torch::Tensor> g;
    for (const auto& p : list->parameters()) g.push_back(p.grad().clone());
    return g;
  }
  torch::nn::ModuleList list;
};

void expect_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(a[i].defined() && b[i].defined()) << what << ": gradient " << i << " missing";
    EXPECT_TRUE(torch::equal(a[i], b[i])) << what << ": gradient " << i << " differs by "
                                          << (a[i] - b[i]).abs().max().item<double>();
  }
}

// Gradients of the blocks and of the input after one forward and backward, the blocks run
// through `run`, with the generator seeded the same way each time.
template <class Run>
std::vector<torch::Tensor> gradients(Run run) {
  Blocks b;
  auto x = torch::randn({4, 5, 8}, at::make_generator<at::CPUGeneratorImpl>(1)).requires_grad_(true);
  torch::manual_seed(99);
  auto y = run(b.list, x);
  // Something else draws from the generator between forward and backward.
  (void)torch::rand({100});
  (y * y).sum().backward();
  auto g = b.grads();
  g.push_back(x.grad().clone());
  return g;
}

torch::Tensor plain(const torch::nn::ModuleList& blocks, torch::Tensor x) {
  for (const auto& m : *blocks) x = m->as<BlockImpl>()->forward(x);
  return x;
}

class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override { ckpt::configure(nullptr); }
};

TEST_F(Checkpoint, GradientsWithDropoutAreBitIdentical) {
  const auto reference = gradients(plain);
  const auto every = gradients([](const torch::nn::ModuleList& l, torch::Tensor x) {
    return ckpt::checkpoint_sequential<BlockImpl>(l, x, 1);
  });
  expect_equal(every, reference, "every block");
  const auto alternate = gradients([](const torch::nn::ModuleList& l, torch::Tensor x) {
    return ckpt::checkpoint_sequential<BlockImpl>(l, x, 2);
  });
  expect_equal(alternate, reference, "every other block");
  // The dropout masks matter: another seed gives other gradients, so equality above is not luck.
  Blocks b;
  auto x = torch::randn({4, 5, 8}, at::make_generator<at::CPUGeneratorImpl>(1)).requires_grad_(true);
  torch::manual_seed(100);
  auto y = plain(b.list, x);
  (y * y).sum().backward();
  EXPECT_FALSE(torch::equal(b.grads()[0], reference[0]));
}

TEST_F(Checkpoint, ModulesCallablesAndExtraArgumentsAllWork) {
  const auto reference = gradients(plain);
  const auto holders = gradients([](const torch::nn::ModuleList& l, torch::Tensor x) {
    for (std::size_t i = 0; i < l->size(); ++i) {
      Block block(l->ptr<BlockImpl>(i));
      x = ckpt::checkpoint(block, x);  // a module holder
    }
    return x;
  });
  expect_equal(holders, reference, "module holders");
  // A callable with a non-tensor argument and two tensor outputs, one of them an integer tensor.
  const auto lambdas = gradients([](const torch::nn::ModuleList& l, torch::Tensor x) {
    for (std::size_t i = 0; i < l->size(); ++i) {
      auto block = l->ptr<BlockImpl>(i);
      auto [out, argmax] = ckpt::checkpoint(
          [block](const torch::Tensor& in, double scale) {
            auto o = block->forward(in) * scale;
            return std::make_tuple(o, o.argmax(-1));
          },
          x, 1.0);
      EXPECT_FALSE(argmax.requires_grad());
      x = out;
    }
    return x;
  });
  expect_equal(lambdas, reference, "lambdas");
}

TEST_F(Checkpoint, ParametersGetGradientsWhenNoInputRequiresGrad) {
  Blocks reference, checkpointed;
  const auto x = torch::randn({2, 8});
  torch::manual_seed(3);
  plain(reference.list, x).sum().backward();
  torch::manual_seed(3);
  ckpt::checkpoint_sequential<BlockImpl>(checkpointed.list, x).sum().backward();
  expect_equal(checkpointed.grads(), reference.grads(), "inputs without grad");
}

TEST_F(Checkpoint, SavedInputsAreHeldUntilBackwardAndNoActivationsAreRecorded) {
  Blocks b;
  const auto x = torch::randn({4, 8}).requires_grad_(true);
  EXPECT_EQ(ckpt::saved_bytes().host, 0);
  auto y = ckpt::checkpoint_sequential<BlockImpl>(b.list, x);
  // Three checkpoints, each keeping its 4x8 fp32 input.
  EXPECT_EQ(ckpt::saved_bytes().host, 3 * 4 * 8 * 4);
  EXPECT_EQ(ckpt::saved_bytes().device, 0);
  y.sum().backward();
  EXPECT_EQ(ckpt::saved_bytes().host, 0);
  // Without grad mode nothing is saved (nothing will run backward).
  {
    torch::NoGradGuard no_grad;
    (void)ckpt::checkpoint_sequential<BlockImpl>(b.list, x);
    EXPECT_EQ(ckpt::saved_bytes().host, 0);
  }
}

TEST_F(Checkpoint, GradInsteadOfBackwardIsAnError) {
  Blocks b;
  const auto x = torch::randn({4, 8}).requires_grad_(true);
  auto y = ckpt::checkpoint_sequential<BlockImpl>(b.list, x).sum();
  try {
    (void)torch::autograd::grad({y}, {x});
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("Checkpointing is not compatible with .grad()"), std::string::npos)
        << e.what();
  }
}

TEST(CheckpointingConfigure, ChecksAndSettings) {
  ckpt::configure(nullptr);
  EXPECT_TRUE(ckpt::is_configured());
  EXPECT_FALSE(ckpt::settings().partition_activations);
  ckpt::Options contiguous;
  contiguous.contiguous_checkpointing = true;
  try {
    ckpt::configure(nullptr, contiguous);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "activation_checkpointing.contiguous_memory_optimization");
  }
  contiguous.partition_activations = true;
  try {
    ckpt::configure(nullptr, contiguous);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "activation_checkpointing.number_checkpoints");
  }
  // The config's keys, overridden by the options.
  const auto config = parse_config(R"({"train_batch_size": 1, "activation_checkpointing": {
      "partition_activations": true, "cpu_checkpointing": true, "number_checkpoints": 4}})",
                                   1);
  ckpt::Options no_cpu;
  no_cpu.checkpoint_in_cpu = false;
  ckpt::configure(nullptr, config, no_cpu);
  EXPECT_TRUE(ckpt::settings().partition_activations);
  EXPECT_FALSE(ckpt::settings().cpu_checkpointing);
  EXPECT_EQ(ckpt::settings().number_checkpoints, 4);
  ckpt::set_num_layers(7);
  EXPECT_EQ(ckpt::settings().number_checkpoints, 7);
  EXPECT_THROW(ckpt::set_num_layers(0), ConfigError);
  // A config given as JSON text (or a file path), as DeepSpeed's deepspeed_config argument.
  ckpt::configure(nullptr, std::string(R"({"train_batch_size": 1, "activation_checkpointing": {"profile": true}})"));
  EXPECT_TRUE(ckpt::settings().profile);
  EXPECT_FALSE(ckpt::settings().partition_activations);
  ckpt::configure(nullptr);
}

TEST(CheckpointingConfigure, ContiguousBuffersHoldNumberCheckpointsThenSayWhatToDo) {
  ckpt::Options o;
  o.partition_activations = true;
  o.contiguous_checkpointing = true;
  o.num_checkpoints = 2;
  ckpt::configure(nullptr, o);
  Blocks b;
  const auto x = torch::randn({4, 8}).requires_grad_(true);
  try {
    (void)ckpt::checkpoint_sequential<BlockImpl>(b.list, x);  // three checkpoints
    FAIL() << "no error";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("more than 2 checkpoints in one forward"), std::string::npos) << e.what();
  }
  ckpt::reset();
  ckpt::set_num_layers(3);
  const auto reference = gradients(plain);
  const auto contiguous = gradients([](const torch::nn::ModuleList& l, torch::Tensor in) {
    return ckpt::checkpoint_sequential<BlockImpl>(l, in);
  });
  expect_equal(contiguous, reference, "contiguous buffers");
  ckpt::configure(nullptr);
}

TEST(CheckpointingRngTracker, ForkRunsOnTheNamedStreamAndLeavesTheDefaultOne) {
  auto& tracker = ckpt::get_cuda_rng_tracker();
  tracker.reset();
  tracker.add("a", 11);
  EXPECT_THROW(tracker.add("b", 11), EngineError);  // seed taken
  EXPECT_THROW(tracker.add("a", 12), EngineError);  // name taken
  EXPECT_THROW((void)tracker.fork("nope"), EngineError);
  torch::manual_seed(1);
  const auto expected_default = torch::rand({3});
  torch::manual_seed(11);
  const auto expected_a = torch::rand({3});
  const auto expected_a_next = torch::rand({3});
  torch::manual_seed(1);
  torch::Tensor in_a, in_a_next;
  {
    auto fork = tracker.fork("a");
    in_a = torch::rand({3});
  }
  {
    auto fork = tracker.fork("a");
    in_a_next = torch::rand({3});
  }
  EXPECT_TRUE(torch::equal(in_a, expected_a));
  EXPECT_TRUE(torch::equal(in_a_next, expected_a_next));  // the named state moves on
  EXPECT_TRUE(torch::equal(torch::rand({3}), expected_default));
  tracker.reset();
}

TEST(CheckpointingRngTracker, ModelParallelSeedGivesMegatronsTwoStreams) {
  ckpt::configure(nullptr);
  ckpt::model_parallel_cuda_manual_seed(42);
  const auto default_draw = torch::rand({2});
  torch::Tensor model_parallel_draw;
  {
    auto fork = ckpt::get_cuda_rng_tracker().fork();
    model_parallel_draw = torch::rand({2});
  }
  torch::manual_seed(42);
  EXPECT_TRUE(torch::equal(default_draw, torch::rand({2})));
  torch::manual_seed(42 + 2718);  // tensor-parallel rank 0
  EXPECT_TRUE(torch::equal(model_parallel_draw, torch::rand({2})));
  // Reseeding the model-parallel stream leaves the default one where it is.
  torch::manual_seed(5);
  const auto default_next = torch::rand({2});
  torch::manual_seed(5);
  ckpt::model_parallel_reconfigure_tp_seed(8);
  EXPECT_TRUE(torch::equal(torch::rand({2}), default_next));
  {
    auto fork = ckpt::get_cuda_rng_tracker().fork();
    model_parallel_draw = torch::rand({2});
  }
  torch::manual_seed(8 + 2718);
  EXPECT_TRUE(torch::equal(model_parallel_draw, torch::rand({2})));
  // The tracker's state is restored for a recompute too: dropout inside a fork in a checkpoint.
  Blocks reference, checkpointed;
  const auto x = torch::randn({2, 8}).requires_grad_(true);
  auto forked = [](const torch::nn::ModuleList& l, torch::Tensor in) {
    auto fork = ckpt::get_cuda_rng_tracker().fork();
    return plain(l, in);
  };
  ckpt::model_parallel_cuda_manual_seed(7);
  forked(reference.list, x).sum().backward();
  ckpt::model_parallel_cuda_manual_seed(7);
  ckpt::checkpoint([&](const torch::Tensor& in) { return forked(checkpointed.list, in); }, x).sum().backward();
  expect_equal(checkpointed.grads(), reference.grads(), "dropout on the tracker's stream");
  ckpt::get_cuda_rng_tracker().reset();
}

struct Net : torch::nn::Module {
  Net() { blocks = register_module("blocks", torch::nn::ModuleList(Block(), Block())); }
  torch::Tensor forward(torch::Tensor x) { return ckpt::checkpoint_sequential<BlockImpl>(blocks, x).sum(-1); }
  torch::nn::ModuleList blocks{nullptr};
};

TEST(CheckpointingInitialize, TheConfigSectionConfiguresUnlessTheProgramDidAndProfileLogsTimes) {
  auto net = std::make_shared<Net>();
  InitializeOptions options;
  options.config_json = nlohmann::json::parse(R"({"train_batch_size": 2, "steps_per_print": 1000,
      "optimizer": {"type": "SGD", "params": {"lr": 0.1}}, "activation_checkpointing": {"profile": true}})");
  // The program's configure() wins over the config.
  ckpt::configure(nullptr);
  (void)initialize(net, options);
  EXPECT_FALSE(ckpt::settings().profile);

  ckpt::detail::unconfigure();
  EXPECT_FALSE(ckpt::is_configured());
  auto engine = initialize(net, options).engine;
  EXPECT_TRUE(ckpt::is_configured());
  EXPECT_TRUE(ckpt::settings().profile);
  const auto& warnings = engine->config().warnings;
  EXPECT_TRUE(std::none_of(warnings.begin(), warnings.end(), [](const std::string& w) {
    return w.find("activation_checkpointing") != std::string::npos;
  }));
  ::testing::internal::CaptureStdout();
  auto loss = engine->forward(torch::randn({2, 8})).sum();
  engine->backward(loss);
  const auto out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("[Rank 0] time (ms) | forward: "), std::string::npos) << out;
  EXPECT_NE(out.find("[Rank 0] time (ms) | backward: "), std::string::npos) << out;
  ckpt::detail::unconfigure();
}

}  // namespace activation_checkpointing_test
}  // namespace deepspeed
