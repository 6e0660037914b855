// transformer_bench: forward + backward time of the transformer op's layer (fused kernels,
// cuBLAS GEMMs) on the cases of cases.h, fp16 and bf16; bench/peers/transformer_peer.py times
// the same layers in PyTorch eager and under torch.compile (docs/PERFORMANCE.md). One line of
// JSON per case.
#include <chrono>
#include <iostream>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <deepspeed/transformer.h>

#include "cases.h"

namespace {

double time_case(const BenchCase& bc, torch::Dtype dtype, int warmup, int iters, bool* used_kernels) {
  deepspeed::ops::TransformerConfig c;
  c.batch_size = bc.batch;
  c.hidden_size = bc.hidden;
  c.intermediate_size = bc.intermediate;
  c.heads = bc.heads;
  c.attn_dropout_ratio = 0.1f;
  c.hidden_dropout_ratio = 0.1f;
  c.num_hidden_layers = 24;
  c.initializer_range = 0.02f;
  c.pre_layer_norm = bc.pre_layer_norm;
  c.seed = 1;
  deepspeed::ops::TransformerLayer layer(c);
  layer->to(torch::kCUDA, dtype);
  const auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
  auto x = torch::randn({bc.batch, bc.seq, bc.hidden}, opts).requires_grad_(true);
  const auto dy = torch::randn({bc.batch, bc.seq, bc.hidden}, opts);
  torch::Tensor mask;
  if (bc.causal) {
    mask = torch::triu(torch::full({bc.seq, bc.seq}, -10000.0, opts), 1).view({1, 1, bc.seq, bc.seq});
  } else {
    mask = torch::zeros({bc.batch, 1, 1, bc.seq}, opts);
  }
  auto step = [&] {
    for (auto& p : layer->parameters()) p.mutable_grad() = torch::Tensor();
    x.mutable_grad() = torch::Tensor();
    layer(x, mask).backward(dy);
  };
  for (int i = 0; i < warmup; ++i) step();
  *used_kernels = layer->last_forward_used_kernels();
  torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) step();
  torch::cuda::synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Forward + backward time of the transformer op's layer"};
  int warmup = 5, iters = 20;
  std::string only;
  app.add_option("--warmup", warmup, "untimed iterations first");
  app.add_option("--iters", iters, "timed iterations");
  app.add_option("--case", only, "only this case (cases.h)");
  CLI11_PARSE(app, argc, argv);
  if (!torch::cuda::is_available()) {
    std::cerr << "transformer_bench: no CUDA GPU\n";
    return 1;
  }
  for (const auto& bc : bench_cases()) {
    if (!only.empty() && bc.name != only) continue;
    for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
      bool kernels = false;
      const double ms = time_case(bc, dtype, warmup, iters, &kernels);
      std::cout << "{\"case\": \"" << bc.name << "\", \"dtype\": \"" << (dtype == torch::kHalf ? "fp16" : "bf16")
                << "\", \"impl\": \"deepspeed-cpp\", \"kernels\": " << (kernels ? "true" : "false")
                << ", \"ms\": " << ms << "}" << std::endl;
    }
  }
  return 0;
}
