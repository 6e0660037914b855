// init_inference on a GPU with the transformer_inference kernels, against the fp32 CPU path:
//  - bf16 logits of forward (prefill) within 5 % of the fp32 logits' range of the fp32 ones;
//  - every greedy token of bf16 generation (decode kernels, KV cache) is within 10 % of the
//    range of the fp32 logits of its position from the fp32 maximum (a near-tie may be picked
//    the other way; a broken decode step picks far from the maximum);
//  - greedy tokens with and without CUDA graphs are equal, batch sizes 1, 3 and 8 of mixed
//    prompt lengths, and again on a second call (graph replayed);
// for the GPT example's model and the LLaMA-style test model (rotary in the decode kernel).
#include <algorithm>
#include <iostream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/inference.h>

#include "gpt_model.h"
#include "llama_test_model.h"

namespace {

using Prompts = std::vector<std::vector<int64_t>>;

#define SKIP_WITHOUT_GPU()                                          \
  do {                                                              \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU"; \
  } while (0)

nlohmann::json gpu_config(int64_t heads, bool graphs) {
  return {{"dtype", "bf16"}, {"replace_with_kernel_inject", true}, {"enable_cuda_graph", graphs},
          {"max_out_tokens", 256}, {"config", {{"num_attention_heads", heads}}}};
}

Prompts prompts_of(int64_t batch, int64_t vocab) {
  torch::manual_seed(40 + static_cast<uint64_t>(batch));
  Prompts p;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = 1 + (b * 7 + 5) % 23;
    auto t = torch::randint(vocab, {len}, torch::kLong);
    p.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + len);
  }
  return p;
}

// The model on the CPU in fp32 (its own copy: the GPU engine takes bf16 copies of the weights).
void check_against_cpu(const std::shared_ptr<torch::nn::Module>& model, int64_t heads, int64_t vocab) {
  auto cpu = std::make_shared<deepspeed::inference::InferenceEngine>(
      model, deepspeed::inference::parse_inference_config({{"dtype", "fp32"}, {"config", {{"num_attention_heads", heads}}}}),
      nullptr, torch::Device(torch::kCPU));
  auto gpu = deepspeed::init_inference(model, gpu_config(heads, true));
  ASSERT_TRUE(gpu->device().is_cuda());

  auto tokens = torch::randint(vocab, {2, 40}, torch::kLong);
  const auto ref = cpu->forward(tokens);
  const double range = (ref.max() - ref.min()).item<double>();
  const double diff = (gpu->forward(tokens).cpu() - ref).abs().max().item<double>();
  std::cout << "forward: bf16 vs fp32 max |diff| " << diff << ", fp32 logit range " << range << "\n";
  EXPECT_LE(diff, 0.05 * range);

  const auto prompts = prompts_of(4, vocab);
  const auto out = gpu->generate(prompts, {.max_new_tokens = 24});
  double worst = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    auto seq = prompts[b];
    seq.insert(seq.end(), out[b].begin(), out[b].end());
    const auto logits = cpu->forward(torch::tensor(seq, torch::kLong).unsqueeze(0))[0];
    for (size_t i = 0; i < out[b].size(); ++i) {
      const auto row = logits[static_cast<int64_t>(prompts[b].size() + i - 1)];
      const double gap = (row.max() - row[static_cast<int64_t>(out[b][i])]).item<double>();
      const double r = (row.max() - row.min()).item<double>();
      worst = std::max(worst, gap / r);
      EXPECT_LE(gap, 0.1 * r) << "prompt " << b << ", new token " << i;
    }
  }
  std::cout << "decode: worst gap of a bf16 greedy token below the fp32 maximum: " << worst << " of the range\n";
}

void check_graphs(const std::shared_ptr<torch::nn::Module>& model, int64_t heads, int64_t vocab) {
  auto eager = deepspeed::init_inference(model, gpu_config(heads, false));
  auto graphed = deepspeed::init_inference(model, gpu_config(heads, true));
  ASSERT_TRUE(graphed->cuda_graphs());
  for (int64_t batch : {1, 3, 8}) {
    const auto prompts = prompts_of(batch, vocab);
    const auto want = eager->generate(prompts, {.max_new_tokens = 20});
    EXPECT_EQ(graphed->generate(prompts, {.max_new_tokens = 20}), want) << "batch " << batch;
    EXPECT_EQ(graphed->generate(prompts, {.max_new_tokens = 20}), want) << "batch " << batch << ", replayed";
  }
}

gpt::GptConfig small_gpt() {
  gpt::GptConfig c = gpt::preset("tiny");
  c.vocab_size = 512;
  c.seq_len = 256;
  c.n_layer = 3;
  c.n_head = 4;
  c.d_model = 256;
  return c;
}

TEST(InferenceGpu, GptBf16AgreesWithTheFp32CpuPath) {
  SKIP_WITHOUT_GPU();
  torch::manual_seed(1);
  auto model = gpt::Gpt(small_gpt());
  check_against_cpu(model.ptr(), 4, 512);
}

TEST(InferenceGpu, LlamaBf16AgreesWithTheFp32CpuPath) {
  SKIP_WITHOUT_GPU();
  torch::manual_seed(2);
  deepspeed::inference_test::LlamaConfig c;
  c.vocab = 300;
  c.d = 256;
  c.heads = 4;
  c.ffn = 512;
  auto model = std::make_shared<deepspeed::inference_test::LlamaModel>(c);
  check_against_cpu(model, c.heads, c.vocab);
}

TEST(InferenceGpu, CudaGraphsGiveTheTokensOfEagerDecoding) {
  SKIP_WITHOUT_GPU();
  torch::manual_seed(3);
  auto model = gpt::Gpt(small_gpt());
  check_graphs(model.ptr(), 4, 512);
  deepspeed::inference_test::LlamaConfig c;
  c.d = 128;
  c.heads = 2;
  auto llama = std::make_shared<deepspeed::inference_test::LlamaModel>(c);
  check_graphs(llama, c.heads, c.vocab);
}

}  // namespace
