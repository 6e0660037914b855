// moe_bench: forward + backward of deepspeed::moe::MoE (E experts, top-k, GPT MLP experts of
// 4 x hidden) against the dense MLP that does the same FLOPs per token (k x 4 x hidden wide),
// and against the E experts run alone on buffers of the layer's capacity: MoE minus experts is
// what gating, dispatch and combine cost. Medians of individually timed iterations; one line
// of JSON per measurement.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <deepspeed/moe.h>

namespace {

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t hidden, int64_t width)
      : up(register_module("up", torch::nn::Linear(hidden, width))),
        down(register_module("down", torch::nn::Linear(width, hidden))) {}
  torch::Tensor forward(const torch::Tensor& x) { return down(torch::gelu(up(x), "tanh")); }
  torch::nn::Linear up, down;
};
TORCH_MODULE(Mlp);

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Median milliseconds of `iters` runs of `step` after `warmup` untimed ones.
template <typename Step>
double median_ms(const torch::Device& device, int warmup, int iters, Step&& step) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    step();
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

void clear_grads(torch::nn::Module& m, torch::Tensor& x) {
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
  x.mutable_grad() = torch::Tensor();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"MoE layer against a dense MLP of the same active FLOPs, forward + backward"};
  int64_t tokens = 8192, hidden = 2048, experts = 8, k = 2;
  double capacity_factor = 1.0;
  std::string dtype_name = "bf16", device_name = "cuda";
  int warmup = 5, iters = 30;
  app.add_option("--tokens", tokens, "tokens per step (batch x sequence)");
  app.add_option("--hidden", hidden, "hidden size; each expert is hidden -> 4 hidden -> hidden");
  app.add_option("--experts", experts, "number of experts");
  app.add_option("--k", k, "experts per token");
  app.add_option("--capacity_factor", capacity_factor, "DeepSpeed's capacity_factor");
  app.add_option("--dtype", dtype_name, "bf16, fp16 or fp32")->check(CLI::IsMember({"bf16", "fp16", "fp32"}));
  app.add_option("--device", device_name, "cuda or cpu")->check(CLI::IsMember({"cuda", "cpu"}));
  app.add_option("--warmup", warmup, "untimed iterations first");
  app.add_option("--iters", iters, "timed iterations");
  CLI11_PARSE(app, argc, argv);
  const torch::Device device(device_name == "cuda" ? torch::kCUDA : torch::kCPU);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    std::cerr << "moe_bench: no CUDA GPU (--device cpu runs on the CPU)\n";
    return 1;
  }
  const auto dtype = dtype_name == "bf16" ? torch::kBFloat16 : dtype_name == "fp16" ? torch::kHalf : torch::kFloat32;
  torch::manual_seed(1);

  deepspeed::moe::MoEOptions o;
  o.num_experts = experts;
  o.k = k;
  o.capacity_factor = capacity_factor;
  o.top2_2nd_expert_sampling = false;  // the choice of the second expert costs the same either way
  deepspeed::moe::MoE moe(hidden, [&] { return torch::nn::AnyModule(Mlp(hidden, 4 * hidden)); }, o);
  moe->to(device, dtype);
  Mlp dense(hidden, k * 4 * hidden);
  dense->to(device, dtype);
  torch::nn::ModuleList alone;
  for (int64_t e = 0; e < experts; ++e) alone->push_back(Mlp(hidden, 4 * hidden));
  alone->to(device, dtype);

  const auto opts = torch::TensorOptions().device(device).dtype(dtype);
  auto x = torch::randn({tokens, hidden}, opts).requires_grad_(true);
  const auto dy = torch::randn({tokens, hidden}, opts);
  int64_t capacity = 0;
  const double moe_ms = median_ms(device, warmup, iters, [&] {
    clear_grads(*moe, x);
    auto [out, l_aux, counts] = moe->forward(x);
    torch::autograd::backward({out, l_aux}, {dy, torch::full({}, 0.01, l_aux.options())});
  });
  // The layer's capacity for these tokens (drop_tokens: a function of the shapes alone).
  {
    deepspeed::moe::GatingOptions g;
    g.capacity_factor = capacity_factor;
    g.top2_2nd_expert_sampling = false;
    const auto logits = torch::randn({tokens, experts}, torch::TensorOptions().device(device));
    capacity = k == 1 ? deepspeed::moe::top1gating(logits, g).capacity
               : k == 2 ? deepspeed::moe::top2gating(logits, g).capacity
                        : deepspeed::moe::topkgating(logits, k, g).capacity;
  }
  auto buffers = torch::randn({experts, capacity, hidden}, opts).requires_grad_(true);
  const auto dbuffers = torch::randn({experts, capacity, hidden}, opts);
  const double experts_ms = median_ms(device, warmup, iters, [&] {
    clear_grads(*alone, buffers);
    std::vector<torch::Tensor> outs;
    for (int64_t e = 0; e < experts; ++e) outs.push_back(alone[e]->as<MlpImpl>()->forward(buffers[e]));
    torch::stack(outs).backward(dbuffers);
  });
  // The same stacked into one batched product per matrix: what grouped expert GEMMs would give.
  auto up_w = torch::randn({experts, hidden, 4 * hidden}, opts).mul_(0.02).requires_grad_(true);
  auto down_w = torch::randn({experts, 4 * hidden, hidden}, opts).mul_(0.02).requires_grad_(true);
  const double batched_ms = median_ms(device, warmup, iters, [&] {
    up_w.mutable_grad() = torch::Tensor();
    down_w.mutable_grad() = torch::Tensor();
    buffers.mutable_grad() = torch::Tensor();
    torch::bmm(torch::gelu(torch::bmm(buffers, up_w), "tanh"), down_w).backward(dbuffers);
  });
  // The layer with experts that cost nothing: the gate, dispatch and combine alone.
  deepspeed::moe::MoE routing(hidden, [] { return torch::nn::AnyModule(torch::nn::Identity()); }, o);
  routing->to(device, dtype);
  const double routing_ms = median_ms(device, warmup, iters, [&] {
    clear_grads(*routing, x);
    auto [out, l_aux, counts] = routing->forward(x);
    torch::autograd::backward({out, l_aux}, {dy, torch::full({}, 0.01, l_aux.options())});
  });
  const double dense_ms = median_ms(device, warmup, iters, [&] {
    clear_grads(*dense, x);
    dense->forward(x).backward(dy);
  });
  // Forward + backward of the MLPs: 3 x 2 FLOPs per multiply-add, two matrices per MLP.
  const double active_flops = 6.0 * 2.0 * static_cast<double>(tokens) * hidden * (k * 4.0 * hidden);
  auto line = [&](const char* what, double ms) {
    std::cout << fmt::format(
                     "{{\"impl\": \"{}\", \"tokens\": {}, \"hidden\": {}, \"experts\": {}, \"k\": {}, \"capacity\": {}, "
                     "\"dtype\": \"{}\", \"ms\": {:.3f}, \"active_tflops\": {:.1f}}}",
                     what, tokens, hidden, experts, k, capacity, dtype_name, ms, active_flops / ms / 1e9)
              << std::endl;
  };
  line("moe", moe_ms);
  line("dense_mlp", dense_ms);
  line("experts_alone", experts_ms);
  line("experts_batched", batched_ms);
  line("routing_alone", routing_ms);
  std::cout << fmt::format("{{\"moe_over_dense\": {:.3f}, \"gating_dispatch_combine_share\": {:.3f}, "
                           "\"routing_alone_share\": {:.3f}}}",
                           moe_ms / dense_ms, (moe_ms - experts_ms) / moe_ms, routing_ms / moe_ms)
            << std::endl;
  return 0;
}
