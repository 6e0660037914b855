// Activation checkpointing on a CUDA GPU: dropout draws from the CUDA generator, whose state the
// checkpoint must restore for the recompute (the same gradients as without checkpointing), and
// cpu_checkpointing keeps the saved inputs in host memory, none on the GPU, with the same
// gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

namespace deepspeed {
namespace activation_checkpointing_gpu_test {

namespace ckpt = checkpointing;

struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(64, 256));
    fc2 = register_module("fc2", torch::nn::Linear(256, 64));
  }
  torch::Tensor forward(torch::Tensor x) {
    return x + fc2->forward(torch::dropout(torch::gelu(fc1->forward(x)), 0.3, is_training()));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Block);

struct Run {
  std::vector<torch::Tensor> grads;
  ckpt::SavedBytes held;
};

// One forward and backward of four blocks on the GPU, checkpointed every `every` blocks (0: not).
Run run(int64_t every) {
  torch::manual_seed(3);
  torch::nn::ModuleList blocks;
  for (int i = 0; i < 4; ++i) blocks->push_back(Block());
  blocks->to(torch::kCUDA);
  auto x = torch::randn({8, 32, 64}, at::make_generator<at::CPUGeneratorImpl>(1)).to(torch::kCUDA);
  x.requires_grad_(true);
  torch::cuda::manual_seed(99);
  torch::Tensor y = x;
  if (every > 0) {
    y = ckpt::checkpoint_sequential<BlockImpl>(blocks, x, every);
  } else {
    for (const auto& b : *blocks) y = b->as<BlockImpl>()->forward(y);
  }
  Run r;
  r.held = ckpt::saved_bytes();
  (void)torch::rand({1000}, torch::TensorOptions().device(torch::kCUDA));  // the generator moves on
  (y * y).sum().backward();
  for (const auto& p : blocks->parameters()) r.grads.push_back(p.grad().cpu());
  r.grads.push_back(x.grad().cpu());
  return r;
}

void expect_same(const Run& a, const Run& b, const std::string& what) {
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (std::size_t i = 0; i < a.grads.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a.grads[i], b.grads[i], 1e-5, 1e-6))
        << what << ": gradient " << i << " differs by " << (a.grads[i] - b.grads[i]).abs().max().item<double>();
  }
}

class ActivationCheckpointingGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU on this machine";
    ckpt::configure(nullptr);
  }
  void TearDown() override { ckpt::configure(nullptr); }
};

TEST_F(ActivationCheckpointingGpu, DropoutOnTheGpuDrawsTheSameMasksInTheRecompute) {
  const auto reference = run(0);
  const auto checkpointed = run(1);
  expect_same(checkpointed, reference, "every block");
  EXPECT_GT(checkpointed.held.device, 0);
  EXPECT_EQ(checkpointed.held.host, 0);
}

TEST_F(ActivationCheckpointingGpu, CpuCheckpointingKeepsTheSavedInputsOnTheHost) {
  const auto reference = run(0);
  ckpt::Options host;
  host.checkpoint_in_cpu = true;
  ckpt::configure(nullptr, host);
  const auto checkpointed = run(1);
  expect_same(checkpointed, reference, "cpu_checkpointing");
  EXPECT_EQ(checkpointed.held.device, 0);
  EXPECT_EQ(checkpointed.held.host, 4 * 8 * 32 * 64 * 4);  // four fp32 block inputs
}

}  // namespace activation_checkpointing_gpu_test
}  // namespace deepspeed
