// init_inference on the CPU in fp32: greedy generation gives the tokens the model's own
// forward picks step by step without a cache (the GPT example's model and a LLaMA-style one,
// batches of 1-8 prompts of mixed lengths), the engine's forward gives the model's logits,
// sampling is reproducible for a seed, stop tokens end a sequence (not before
// min_new_tokens), top-k and top-p keep only their tokens, a model no policy fits and a bad
// config are refused naming what is wrong, and a checkpoint written by training at ZeRO-2 and
// ZeRO-3 loads into the engine.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>
#include <deepspeed/inference.h>

#include "gpt_model.h"
#include "inference/sampling.h"
#include "llama_test_model.h"
#include "multiprocess.h"

namespace deepspeed::inference_test {
namespace {

using Prompts = std::vector<std::vector<int64_t>>;
using inference::InferenceEngine;
using inference::GenerationOptions;
using Logits = std::function<torch::Tensor(const torch::Tensor&)>;

gpt::GptConfig tiny_gpt() {
  auto c = gpt::preset("tiny");  // vocab 256, 64 positions, 2 layers, 4 heads, d 64
  return c;
}

nlohmann::json fp32_config(int64_t heads, nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json c = {{"dtype", "fp32"}, {"replace_with_kernel_inject", true},
                      {"config", {{"num_attention_heads", heads}}}};
  c.update(extra);
  return c;
}

// An engine on the CPU whatever the machine has (init_inference would take a GPU).
std::shared_ptr<InferenceEngine> cpu_engine(std::shared_ptr<torch::nn::Module> model, const nlohmann::json& config) {
  return std::make_shared<InferenceEngine>(std::move(model), inference::parse_inference_config(config), nullptr,
                                           torch::Device(torch::kCPU));
}

// Greedy decoding one prompt at a time with the model's full forward at every step.
std::vector<int64_t> reference_greedy(const Logits& logits, std::vector<int64_t> prompt, int64_t max_new,
                                      const std::vector<int64_t>& stop = {}) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < max_new; ++i) {
    auto tokens = torch::tensor(prompt, torch::kLong).unsqueeze(0);
    const int64_t next = logits(tokens).select(1, tokens.size(1) - 1).argmax(-1).item<int64_t>();
    out.push_back(next);
    prompt.push_back(next);
    if (std::find(stop.begin(), stop.end(), next) != stop.end()) break;
  }
  return out;
}

Prompts mixed_prompts(int64_t batch, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  Prompts p;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = 1 + (b * 5 + 3) % 11;  // 4, 9, 3, 8, 2, 7, 1, 6
    auto t = torch::randint(vocab, {len}, torch::kLong);
    p.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + len);
  }
  return p;
}

void expect_greedy_matches(InferenceEngine& engine, const Logits& logits, int64_t vocab) {
  for (int64_t batch = 1; batch <= 8; ++batch) {
    const auto prompts = mixed_prompts(batch, vocab, 100 + static_cast<uint64_t>(batch));
    const auto got = engine.generate(prompts, {.max_new_tokens = 6});
    ASSERT_EQ(got.size(), prompts.size());
    for (size_t b = 0; b < prompts.size(); ++b) {
      EXPECT_EQ(got[b], reference_greedy(logits, prompts[b], 6)) << "batch " << batch << ", prompt " << b;
    }
  }
}

TEST(InferenceTest, GptGreedyGenerationEqualsTheModelsStepByStepForward) {
  torch::manual_seed(1);
  auto model = gpt::Gpt(tiny_gpt());
  auto engine = init_inference(model.ptr(), fp32_config(4));
  EXPECT_EQ(engine->policy(), "gpt2");
  expect_greedy_matches(*engine, [&](const torch::Tensor& t) { return model->logits(t); }, 256);
}

TEST(InferenceTest, LlamaGreedyGenerationEqualsTheModelsStepByStepForward) {
  torch::manual_seed(2);
  const LlamaConfig c;
  auto model = std::make_shared<LlamaModel>(c);
  auto engine = init_inference(model, fp32_config(c.heads, {{"config", {{"num_attention_heads", c.heads},
                                                                         {"rms_norm_eps", c.eps}}}}));
  EXPECT_EQ(engine->policy(), "llama");
  expect_greedy_matches(*engine, [&](const torch::Tensor& t) { return model->forward(t); }, c.vocab);
}

TEST(InferenceTest, WithoutKernelInjectionTheSameTokens) {
  torch::manual_seed(1);
  auto model = gpt::Gpt(tiny_gpt());
  auto engine = init_inference(model.ptr(), fp32_config(4, {{"replace_with_kernel_inject", false}}));
  const auto prompts = mixed_prompts(3, 256, 7);
  const auto got = engine->generate(prompts, {.max_new_tokens = 5});
  for (size_t b = 0; b < prompts.size(); ++b) {
    EXPECT_EQ(got[b], reference_greedy([&](const torch::Tensor& t) { return model->logits(t); }, prompts[b], 5));
  }
}

TEST(InferenceTest, ForwardLogitsEqualTheModels) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  auto gpt_model = gpt::Gpt(tiny_gpt());
  auto tokens = torch::randint(256, {3, 17}, torch::kLong);
  auto engine = cpu_engine(gpt_model.ptr(), fp32_config(4));
  EXPECT_LT((engine->forward(tokens) - gpt_model->logits(tokens)).abs().max().item<double>(), 1e-5);

  const LlamaConfig c;
  auto llama = std::make_shared<LlamaModel>(c);
  auto llama_engine = cpu_engine(llama, fp32_config(c.heads));
  tokens = torch::randint(c.vocab, {2, 13}, torch::kLong);
  EXPECT_LT((llama_engine->forward(tokens) - llama->forward(tokens)).abs().max().item<double>(), 1e-5);

  // bf16 on the CPU: the weights converted, within 5 % of the fp32 logits' range.
  auto bf16 = cpu_engine(llama, fp32_config(c.heads, {{"dtype", "bf16"}}));
  const auto ref = llama->forward(tokens);
  const double range = (ref.max() - ref.min()).item<double>();
  EXPECT_LT((bf16->forward(tokens) - ref).abs().max().item<double>(), 0.05 * range);
}

TEST(InferenceTest, SamplingIsReproducibleForASeedAndDiffersForAnother) {
  torch::manual_seed(4);
  auto model = gpt::Gpt(tiny_gpt());
  auto engine = init_inference(model.ptr(), fp32_config(4));
  const auto prompts = mixed_prompts(4, 256, 11);
  GenerationOptions o{.max_new_tokens = 12, .do_sample = true, .temperature = 1.5, .top_k = 50, .top_p = 0.95,
                      .seed = 1};
  const auto a = engine->generate(prompts, o);
  EXPECT_EQ(engine->generate(prompts, o), a);
  o.seed = 2;
  EXPECT_NE(engine->generate(prompts, o), a);
  // top_k 1 is greedy whatever the seed.
  o.top_k = 1;
  EXPECT_EQ(engine->generate(prompts, o), engine->generate(prompts, {.max_new_tokens = 12}));
}

TEST(InferenceTest, StopTokensEndASequenceButNotBeforeMinNewTokens) {
  torch::manual_seed(5);
  auto model = gpt::Gpt(tiny_gpt());
  auto engine = init_inference(model.ptr(), fp32_config(4));
  const auto prompts = mixed_prompts(2, 256, 13);
  const auto greedy = engine->generate(prompts, {.max_new_tokens = 10});
  const int64_t stop = greedy[0][2];
  const auto first_at = std::find(greedy[0].begin(), greedy[0].end(), stop) - greedy[0].begin();
  const auto stopped = engine->generate(prompts, {.max_new_tokens = 10, .stop_tokens = {stop}});
  ASSERT_EQ(static_cast<int64_t>(stopped[0].size()), first_at + 1);
  EXPECT_EQ(stopped[0].back(), stop);
  const auto logits = [&](const torch::Tensor& t) { return model->logits(t); };
  EXPECT_EQ(stopped[1], reference_greedy(logits, prompts[1], 10, {stop}));
  // min_new_tokens: the stop token is not chosen in the first 5 tokens.
  const auto late = engine->generate(prompts, {.max_new_tokens = 10, .min_new_tokens = 5, .stop_tokens = {stop}});
  for (size_t i = 0; i < std::min<size_t>(5, late[0].size()); ++i) EXPECT_NE(late[0][i], stop);
  EXPECT_GE(late[0].size(), 5u);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(InferenceTest, AModelNoPolicyFitsIsRefusedNamingTheParameter) {
  auto other = std::make_shared<torch::nn::Module>();
  other->register_module("encoder", torch::nn::Linear(4, 4));
  EXPECT_NE(error_of([&] { init_inference(other, fp32_config(2)); }).find("\"encoder.weight\""), std::string::npos);

  // A GPT block with a parameter the policy does not know: that parameter is named.
  auto model = gpt::Gpt(tiny_gpt());
  model->named_modules()["blocks.1"]->register_parameter("extra", torch::zeros({3}));
  const auto error = error_of([&] { init_inference(model.ptr(), fp32_config(4)); });
  EXPECT_NE(error.find("\"blocks.1.extra\" does not fit"), std::string::npos) << error;

  // A LLaMA-style model whose q_proj has the wrong shape.
  LlamaConfig c;
  auto llama = std::make_shared<LlamaModel>(c);
  llama->named_modules()["model.layers.0.self_attn"]->replace_module(
      "q_proj", torch::nn::Linear(torch::nn::LinearOptions(c.d, 8).bias(false)));
  const auto shape_error = error_of([&] { init_inference(llama, fp32_config(c.heads)); });
  EXPECT_NE(shape_error.find("model.layers.0.self_attn.q_proj.weight\" has shape [8, 32]"), std::string::npos)
      << shape_error;
}

TEST(InferenceTest, BadConfigsAreRefusedNamingTheKey) {
  auto msg = [](const nlohmann::json& j) { return error_of([&] { inference::parse_inference_config(j); }); };
  EXPECT_NE(msg({{"max_out_token", 8}}).find("max_out_tokens"), std::string::npos);
  EXPECT_NE(msg({{"dtype", "fp8"}}).find("dtype"), std::string::npos);
  EXPECT_NE(msg({{"max_out_tokens", 0}}).find("max_out_tokens"), std::string::npos);
  EXPECT_NE(msg({{"tensor_parallel", {{"tp_size", 0}}}}).find("tensor_parallel.tp_size"), std::string::npos);
  EXPECT_NE(msg({{"tensor_parallel", {{"tp_size", 2}}}, {"mp_size", 4}}).find("mp_size"), std::string::npos);
  EXPECT_NE(msg({{"use_triton", true}}).find("use_triton"), std::string::npos);
  EXPECT_NE(msg({{"config", {{"num_attention_head", 2}}}}).find("config.num_attention_head"), std::string::npos);
  EXPECT_NE(msg({{"max_out_tokens", 8}, {"max_tokens", 8}}).find("alias"), std::string::npos);

  // DeepSpeed's defaults and aliases.
  const auto d = inference::parse_inference_config(nlohmann::json::object());
  EXPECT_EQ(d.dtype, torch::kHalf);
  EXPECT_EQ(d.max_out_tokens, 1024);
  EXPECT_EQ(d.min_out_tokens, 1);
  EXPECT_EQ(d.tp_size, 1);
  EXPECT_FALSE(d.replace_with_kernel_inject);
  const auto a = inference::parse_inference_config(
      {{"mp_size", 2}, {"kernel_inject", true}, {"max_tokens", 64}, {"dtype", "torch.bfloat16"}, {"checkpoint", "/x"}});
  EXPECT_EQ(a.tp_size, 2);
  EXPECT_TRUE(a.replace_with_kernel_inject);
  EXPECT_EQ(a.max_out_tokens, 64);
  EXPECT_EQ(a.dtype, torch::kBFloat16);
  EXPECT_EQ(a.checkpoint_dir, "/x");

  // What the engine refuses: no head count, fp16 on the CPU, prompts beyond the cache.
  auto model = gpt::Gpt(tiny_gpt());
  EXPECT_NE(error_of([&] { init_inference(model.ptr(), {{"dtype", "fp32"}}); }).find("num_attention_heads"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cpu_engine(model.ptr(), fp32_config(4, {{"dtype", "fp16"}})); }).find("dtype"),
            std::string::npos);
  auto small = init_inference(model.ptr(), fp32_config(4, {{"max_out_tokens", 8}}));
  EXPECT_NE(error_of([&] { small->generate({{1, 2, 3, 4, 5}}, {.max_new_tokens = 5}); }).find("max_out_tokens 8"),
            std::string::npos);
  EXPECT_NO_THROW(small->generate({{1, 2, 3, 4, 5}}, {.max_new_tokens = 4}));
  EXPECT_NE(error_of([&] { small->generate({{1, 999}}); }).find("token 999"), std::string::npos);
}

// Trains the tiny GPT for a few steps at `stage` and saves a checkpoint; an engine loading it
// into a fresh model holds the trained weights and generates what the trained model does.
void expect_checkpoint_loads(int stage) {
  testing::TempDir dir;
  torch::manual_seed(6);
  auto trained = gpt::Gpt(tiny_gpt());
  InitializeOptions options;
  options.config_json = nlohmann::json::parse(R"({"train_batch_size": 2, "steps_per_print": 1000,
      "optimizer": {"type": "Adam", "params": {"lr": 0.01}}, "zero_optimization": {"stage": )" +
                                              std::to_string(stage) + "}}");
  auto [engine, optimizer, loader, scheduler] = initialize(trained.ptr(), options);
  for (int step = 0; step < 3; ++step) {
    auto x = torch::randint(256, {2, 16}, torch::kLong);
    auto loss = engine->forward(x, x.roll(-1, 1));
    engine->backward(loss);
    engine->step();
  }
  engine->save_checkpoint(dir.path());
  // The trained weights, whole (ZeRO-3 holds shards between forwards).
  auto reference = gpt::Gpt(tiny_gpt());
  {
    auto gathered = engine->gathered_parameters();
    torch::NoGradGuard no_grad;
    auto from = trained->named_parameters();
    for (auto& p : reference->named_parameters()) p.value().copy_(from[p.key()]);
  }
  torch::manual_seed(99);
  auto fresh = gpt::Gpt(tiny_gpt());
  auto loaded = init_inference(fresh.ptr(), fp32_config(4, {{"checkpoint", dir.path()}}));
  auto expected = reference->named_parameters();
  for (const auto& p : fresh->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), expected[p.key()])) << "stage " << stage << ": " << p.key();
  }
  const auto prompts = mixed_prompts(3, 256, 21);
  auto from_reference = init_inference(reference.ptr(), fp32_config(4));
  const auto want = from_reference->generate(prompts, {.max_new_tokens = 6});
  EXPECT_EQ(loaded->generate(prompts, {.max_new_tokens = 6}), want);

  // The tag named instead of `latest`; a tag that is not there is an error naming it.
  auto other = gpt::Gpt(tiny_gpt());
  auto tagged = init_inference(
      other.ptr(), fp32_config(4, {{"checkpoint", {{"checkpoint_dir", dir.path()}, {"tag", "global_step3"}}}}));
  EXPECT_EQ(tagged->generate(prompts, {.max_new_tokens = 6}), want);
  const auto error = error_of([&] {
    init_inference(other.ptr(), fp32_config(4, {{"checkpoint", {{"checkpoint_dir", dir.path()}, {"tag", "step9"}}}}));
  });
  EXPECT_NE(error.find("step9"), std::string::npos) << error;
}

TEST(InferenceTest, ACheckpointTrainedAtZero2Loads) { expect_checkpoint_loads(2); }
TEST(InferenceTest, ACheckpointTrainedAtZero3Loads) { expect_checkpoint_loads(3); }

TEST(InferenceTest, AMissingCheckpointIsRefusedNamingTheFolder) {
  testing::TempDir dir;
  auto model = gpt::Gpt(tiny_gpt());
  const auto error = error_of([&] { init_inference(model.ptr(), fp32_config(4, {{"checkpoint", dir.path()}})); });
  EXPECT_NE(error.find(dir.path()), std::string::npos) << error;
}

}  // namespace
}  // namespace deepspeed::inference_test

namespace deepspeed::inference_test {
namespace {

// Hugging Face's order and semantics: top-k keeps the k most likely, top-p the most likely
// tokens until their probability reaches p (the first always).
TEST(TokenSamplerTest, TopKAndTopPKeepOnlyTheirTokens) {
  const auto logits = torch::tensor({0.5, 0.3, 0.1, 0.06, 0.04}, torch::kFloat).log().unsqueeze(0).repeat({400, 1});
  auto counts = [&](const GenerationOptions& o) {
    inference::TokenSampler sampler(o);
    return torch::bincount(sampler.next(logits, false), {}, 5);
  };
  const auto nucleus = counts({.do_sample = true, .top_p = 0.7, .seed = 3});
  EXPECT_EQ(nucleus[2].item<int64_t>() + nucleus[3].item<int64_t>() + nucleus[4].item<int64_t>(), 0) << nucleus;
  EXPECT_GT(nucleus[1].item<int64_t>(), 100) << nucleus;  // 0.3 / 0.8 of 400 = 150 expected
  const auto top2 = counts({.do_sample = true, .top_k = 2, .seed = 3});
  EXPECT_EQ(top2[2].item<int64_t>() + top2[3].item<int64_t>() + top2[4].item<int64_t>(), 0) << top2;
  const auto all = counts({.do_sample = true, .seed = 3});
  EXPECT_GT(all[4].item<int64_t>(), 0) << all;  // 0.04 of 400 = 16 expected
  // A low temperature sharpens towards the most likely token.
  const auto cold = counts({.do_sample = true, .temperature = 0.05, .seed = 3});
  EXPECT_EQ(cold[0].item<int64_t>(), 400) << cold;
  // Greedy ignores the generator; suppressed stop tokens are never chosen.
  inference::TokenSampler greedy({.stop_tokens = {0}});
  EXPECT_EQ(greedy.next(logits, false)[0].item<int64_t>(), 0);
  EXPECT_EQ(greedy.next(logits, true)[0].item<int64_t>(), 1);
}

}  // namespace
}  // namespace deepspeed::inference_test
