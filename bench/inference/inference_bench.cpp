// inference_bench: init_inference on a GPT-2-style model with random weights (the GPT example's
// sizes and parameter names), bf16, on one GPU: time to first token and decode tokens/s for a
// prompt of --prompt tokens and --new new tokens (greedy, no early stop) at each batch size,
// and the decode step against the memory-bandwidth limit: (weight bytes + KV cache bytes read
// per step) / the device-to-device copy bandwidth measured here. One JSON line per row; the
// same rows as bench/peers/hf_generate_peer.py.
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <deepspeed/comm.h>
#include <deepspeed/inference.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "gpt_model.h"

namespace {

// A module holding the GPT example's parameters by name, created on the GPU in bf16 (a 6.7B
// model built on the CPU first would take minutes and 27 GB of host memory).
std::shared_ptr<torch::nn::Module> random_gpt(const gpt::GptConfig& c, torch::Device device) {
  auto root = std::make_shared<torch::nn::Module>();
  const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(device);
  auto child = [](const std::shared_ptr<torch::nn::Module>& parent, const std::string& name) {
    return parent->register_module(name, std::make_shared<torch::nn::Module>());
  };
  auto normal = [&](std::vector<int64_t> shape) { return torch::randn(shape, opts) * 0.02; };
  const int64_t d = c.d_model;
  child(root, "wte")->register_parameter("weight", normal({c.vocab_size, d}), false);
  child(root, "wpe")->register_parameter("weight", normal({c.seq_len, d}), false);
  auto blocks = child(root, "blocks");
  auto linear = [&](const std::shared_ptr<torch::nn::Module>& block, const std::string& name, int64_t out, int64_t in) {
    auto l = child(block, name);
    l->register_parameter("weight", normal({out, in}), false);
    l->register_parameter("bias", torch::zeros({out}, opts), false);
  };
  auto norm = [&](const std::shared_ptr<torch::nn::Module>& parent, const std::string& name) {
    auto n = child(parent, name);
    n->register_parameter("weight", torch::ones({d}, opts), false);
    n->register_parameter("bias", torch::zeros({d}, opts), false);
  };
  for (int64_t i = 0; i < c.n_layer; ++i) {
    auto b = child(blocks, std::to_string(i));
    norm(b, "ln_1");
    linear(b, "c_attn", 3 * d, d);
    linear(b, "attn_proj", d, d);
    norm(b, "ln_2");
    linear(b, "c_fc", 4 * d, d);
    linear(b, "mlp_proj", d, 4 * d);
  }
  norm(root, "ln_f");
  return root;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Bytes per second of a large device-to-device copy (each byte read once and written once).
double copy_bandwidth(torch::Device device) {
  auto a = torch::empty({int64_t{1} << 30}, torch::TensorOptions().dtype(torch::kByte).device(device));
  auto b = torch::empty_like(a);
  for (int i = 0; i < 3; ++i) b.copy_(a);
  torch::cuda::synchronize();
  const int reps = 20;
  const auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) b.copy_(a);
  torch::cuda::synchronize();
  return 2.0 * static_cast<double>(a.numel()) * reps / seconds_since(t);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"init_inference decode benchmark (GPT-2-style, random weights, bf16)"};
  std::vector<std::string> models = {"1.3B"};
  std::vector<int64_t> batches = {1, 8, 32};
  int64_t prompt = 512, new_tokens = 256;
  bool graphs = true;
  int64_t tp = 1;
  app.add_option("--model", models, "GPT sizes (gpt::preset names)");
  app.add_option("--batch", batches, "batch sizes");
  app.add_option("--prompt", prompt, "prompt tokens");
  app.add_option("--new", new_tokens, "new tokens");
  app.add_option("--cuda_graph", graphs, "enable_cuda_graph (default true; off with --tp > 1)");
  app.add_option("--tp", tp, "tensor_parallel.tp_size: run under the launcher with this many ranks, one GPU each");
  CLI11_PARSE(app, argc, argv);
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "inference_bench: needs a CUDA GPU\n");
    return 1;
  }
  torch::NoGradGuard no_grad;
  int64_t rank = 0;
  if (tp > 1) {
    rank = deepspeed::comm::init_distributed()->rank();
    graphs = false;
  }
  const char* local = std::getenv("LOCAL_RANK");
  const torch::Device device(torch::kCUDA, static_cast<c10::DeviceIndex>(local ? std::atoi(local) : 0));
  torch::cuda::synchronize();
  const double bandwidth = copy_bandwidth(device);
  if (rank == 0) std::printf("{\"copy_bandwidth_gbs\": %.1f}\n", bandwidth / 1e9);
  for (const auto& name : models) {
    auto c = gpt::preset(name);
    torch::manual_seed(0);
    auto model = random_gpt(c, device);
    auto engine = deepspeed::init_inference(model, {{"dtype", "bf16"},
                                                    {"replace_with_kernel_inject", true},
                                                    {"enable_cuda_graph", graphs},
                                                    {"max_out_tokens", prompt + new_tokens},
                                                    {"tensor_parallel", {{"tp_size", tp}}},
                                                    {"config", {{"num_attention_heads", c.n_head}}}});
    int64_t weight_bytes = 0;
    for (const auto& p : model->named_parameters()) {
      if (p.key() != "wpe.weight") weight_bytes += p.value().numel() * 2;  // wte is read as the output layer
    }
    weight_bytes /= tp;  // about: each rank reads its share of the blocks (the output layer is replicated)
    for (int64_t batch : batches) {
      std::vector<std::vector<int64_t>> prompts;
      auto ids = torch::randint(c.vocab_size, {batch, prompt}, torch::kLong);
      for (int64_t b = 0; b < batch; ++b) prompts.emplace_back(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + prompt);
      // Warm-up (and the CUDA graph's capture for this batch size).
      engine->generate(prompts, {.max_new_tokens = 8});
      torch::cuda::synchronize();
      auto t = std::chrono::steady_clock::now();
      engine->generate(prompts, {.max_new_tokens = 1});
      torch::cuda::synchronize();
      const double ttft = seconds_since(t);
      t = std::chrono::steady_clock::now();
      const auto out = engine->generate(prompts, {.max_new_tokens = new_tokens});
      torch::cuda::synchronize();
      const double total = seconds_since(t);
      const double step = (total - ttft) / static_cast<double>(new_tokens - 1);
      // KV bytes read per step: every layer's k and v of every sequence, at the mean cache
      // length over the decode steps.
      const double mean_len = static_cast<double>(prompt) + static_cast<double>(new_tokens) / 2.0;
      const double kv_bytes = 2.0 * 2.0 * static_cast<double>(c.n_layer * batch * c.d_model / tp) * mean_len;
      const double limit = (static_cast<double>(weight_bytes) + kv_bytes) / bandwidth;
      nlohmann::json row = {{"implementation", "deepspeed-cpp"},
                            {"mode", graphs ? "cuda_graph" : "eager"},
                            {"model", name},
                            {"batch", batch},
                            {"tp", tp},
                            {"prompt", prompt},
                            {"new_tokens", static_cast<int64_t>(out[0].size())},
                            {"ttft_ms", ttft * 1e3},
                            {"step_ms", step * 1e3},
                            {"decode_tokens_per_s", static_cast<double>(batch) / step},
                            {"limit_step_ms", limit * 1e3},
                            {"pct_of_bandwidth_limit", 100.0 * limit / step}};
      if (rank == 0) std::printf("%s\n", row.dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
