// Fused Adam on the GPU: one optimizer step over N fp32 parameters (default 1e9, in tensors
// of GPT-like sizes), ours (fused_adam through deepspeed's AdamW) against PyTorch's fused
// AdamW kernel (at::_fused_adamw_) on identical tensors, back to back, plus a device copy as
// the memory-bandwidth yardstick. An fp32 Adam step must move 28 bytes per parameter (read
// p, g, m, v; write p, m, v); GB/s below counts those bytes.
//   build/bin/fused_adam_bench --params 1e9 --iters 20
#include <algorithm>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <deepspeed/optimizer.h>

namespace {

// Median milliseconds of `fn` over `iters` runs, timed with CUDA events.
template <typename F>
double median_ms(int iters, F&& fn) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> ms;
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  const auto stream = at::cuda::getCurrentCUDAStream().stream();
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(start, stream);
    fn();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Tensors {
  std::vector<torch::Tensor> p, g, m, v;
};

Tensors make(const std::vector<int64_t>& sizes) {
  Tensors t;
  const auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat32);
  for (int64_t n : sizes) {
    t.p.push_back(torch::randn({n}, opts));
    t.g.push_back(torch::randn({n}, opts) * 1e-3);
    t.m.push_back(torch::zeros({n}, opts));
    t.v.push_back(torch::zeros({n}, opts));
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fused Adam: deepspeed fused_adam vs torch fused AdamW"};
  double total = 1e9;
  int iters = 20;
  app.add_option("--params", total, "fp32 parameters in all");
  app.add_option("--iters", iters, "timed steps (median reported)");
  CLI11_PARSE(app, argc, argv);
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "fused_adam_bench: no CUDA GPU\n");
    return 1;
  }
  torch::NoGradGuard no_grad;
  // Shapes of a d=2048 GPT block: MLP matrices, the fused QKV matrix, biases, a projection.
  std::vector<int64_t> sizes;
  int64_t left = static_cast<int64_t>(total);
  const int64_t pattern[] = {2048 * 8192, 2048 * 2048 * 3, 2048, 8192, 2048 * 2048};
  for (int i = 0; left > 0; ++i) {
    const int64_t n = std::min(left, pattern[i % 5]);
    sizes.push_back(n);
    left -= n;
  }
  const double bytes = 28.0 * total;

  double ours_ms = 0;
  {
    Tensors t = make(sizes);
    deepspeed::ParamGroup group;
    group.params = t.p;
    for (size_t i = 0; i < t.p.size(); ++i) t.p[i].mutable_grad() = t.g[i];
    auto opt = deepspeed::make_optimizer("AdamW", {{"lr", 1e-4}, {"weight_decay", 0.01}}, {group});
    ours_ms = median_ms(iters, [&] { opt->step(); });
  }
  c10::cuda::CUDACachingAllocator::emptyCache();
  double torch_ms = 0;
  {
    Tensors t = make(sizes);
    std::vector<torch::Tensor> steps;
    for (size_t i = 0; i < t.p.size(); ++i) {
      steps.push_back(torch::zeros({}, torch::TensorOptions().device(torch::kCUDA)));
    }
    torch_ms = median_ms(iters, [&] {
      at::_fused_adamw_(t.p, t.g, t.m, t.v, {}, steps, 1e-4, 0.9, 0.999, 0.01, 1e-8, false, false);
    });
  }
  c10::cuda::CUDACachingAllocator::emptyCache();
  // Yardstick: a device-to-device copy of 4·N bytes each way (read + write 8 bytes/param).
  auto src = torch::empty({static_cast<int64_t>(total)}, torch::TensorOptions().device(torch::kCUDA));
  auto dst = torch::empty_like(src);
  const double copy_ms = median_ms(iters, [&] { dst.copy_(src); });
  const double copy_gbs = 8.0 * total / copy_ms / 1e6;

  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s, %.2e fp32 parameters in %zu tensors, median of %d steps\n", prop.name, total,
              sizes.size(), iters);
  std::printf("%-28s %10s %10s %12s\n", "", "ms/step", "GB/s", "% of copy");
  std::printf("%-28s %10.2f %10.0f %11.1f%%\n", "deepspeed fused_adam", ours_ms, bytes / ours_ms / 1e6,
              100.0 * bytes / ours_ms / 1e6 / copy_gbs);
  std::printf("%-28s %10.2f %10.0f %11.1f%%\n", "torch _fused_adamw_", torch_ms, bytes / torch_ms / 1e6,
              100.0 * bytes / torch_ms / 1e6 / copy_gbs);
  std::printf("%-28s %10.2f %10.0f %11s\n", "device copy (yardstick)", copy_ms, copy_gbs, "100.0%");
  std::printf("ratio torch/deepspeed time: %.3f\n", torch_ms / ours_ms);
  return 0;
}
