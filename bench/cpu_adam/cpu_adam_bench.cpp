// cpu_adam_bench: the cpu_adam op (ops/cpu/cpu_adam) against LibTorch's own AdamW
// (torch::optim::AdamW, the same formula: decoupled weight decay, bias correction) on the
// same data, and against the ceiling any Adam can reach on this machine: a loop that only
// moves Adam's bytes (reads param, grad, exp_avg, exp_avg_sq; writes param, exp_avg,
// exp_avg_sq) and does no arithmetic worth the name, split across threads as the op is.
//
// For each thread count (OpenMP and ATen both set to it) it prints the median time of one
// step over --steps steps of each, taken in turn after a warm-up step, and the ratios
// (docs/PERFORMANCE.md).
//
//   OMP_NUM_THREADS=2 build/bin/cpu_adam_bench --params 67108864 --steps 10 --threads 1,2
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu/common/parallel_chunks.h"
#include "cpu/common/prefetch.h"
#include "cpu/common/simd_level.h"
#include "cpu/cpu_adam/cpu_adam.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace ops = deepspeed::ops;

constexpr double kLr = 1e-3;
constexpr double kWeightDecay = 0.01;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
double time_ms(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Adam's memory traffic and nothing else: 4 arrays read, 3 written, one pass. The additions
// keep the compiler from dropping the loads; they are far cheaper than the memory they wait
// for. It gets every help the op gets, so that the ceiling is the memory's and not this
// loop's: the widest vectors this CPU has (function clones picked when the program loads)
// and the op's software prefetch (ops/cpu/common/prefetch.h).
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void move_adam_bytes(float* __restrict p, const float* __restrict g, float* __restrict m,
                     float* __restrict v, int64_t count) {
  constexpr int64_t kLine = ops::kFloatsPerLine;
  int64_t line = 0;
  for (; line + kLine <= count; line += kLine) {
    ops::prefetch_ahead(line, count, p, g, m, v);
    for (int64_t i = line; i < line + kLine; ++i) {
      const float gi = g[i];
      p[i] += gi;
      m[i] += gi;
      v[i] += gi;
    }
  }
  for (int64_t i = line; i < count; ++i) {
    const float gi = g[i];
    p[i] += gi;
    m[i] += gi;
    v[i] += gi;
  }
}

// The op's own split across threads (ops/cpu/common/parallel_chunks.h).
void memory_only_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                      int64_t n) {
  ops::parallel_chunks(n, [&](int64_t begin, int64_t end) {
    move_adam_bytes(param + begin, grad + begin, exp_avg + begin, exp_avg_sq + begin, end - begin);
  });
}

void set_threads(int threads) {
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  at::set_num_threads(threads);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cpu_adam op vs torch::optim::AdamW vs a memory-only loop"};
  int64_t n = int64_t{64} << 20;
  int steps = 10;
  std::vector<int> thread_counts = {1, 2};
  app.add_option("--params", n, "fp32 parameters in the one tensor updated (default 64M)");
  app.add_option("--steps", steps, "timed steps per measurement (median reported)");
  app.add_option("--threads", thread_counts, "thread counts to measure")->delimiter(',');
  CLI11_PARSE(app, argc, argv);

  torch::NoGradGuard no_grad;
  const torch::Tensor grad = torch::randn({n});
  // LibTorch's optimizer owns its tensors; ours get their own copies of the same data.
  torch::Tensor torch_param = torch::randn({n});
  torch_param.mutable_grad() = grad;
  torch::optim::AdamW torch_adamw({torch_param},
                                  torch::optim::AdamWOptions(kLr).weight_decay(kWeightDecay));
  torch::Tensor param = torch_param.detach().clone();
  torch::Tensor exp_avg = torch::zeros({n});
  torch::Tensor exp_avg_sq = torch::zeros({n});
  torch::Tensor scratch_p = param.clone(), scratch_m = exp_avg.clone(),
                scratch_v = exp_avg_sq.clone();

  const ops::SimdLevel level = ops::selected_simd_level();
  std::printf(
      "cpu_adam_bench: %lld fp32 parameters (%.0f MiB per array), median of %d steps; "
      "cpu_adam SIMD level %s (runnable: %s)\n",
      static_cast<long long>(n), n * 4.0 / (1 << 20), steps, ops::to_string(level),
      ops::join(ops::runnable_simd_levels()).c_str());
  std::printf("%7s %18s %14s %14s %12s %12s %10s\n", "threads", "torch AdamW ms", "cpu_adam ms",
              "memory ms", "vs torch", "of ceiling", "GB/s");
  int64_t step = 0;
  for (int threads : thread_counts) {
    set_threads(threads);
    auto torch_step = [&] { torch_adamw.step(); };
    auto ours_step = [&] {
      ops::AdamStep s;
      s.lr = kLr;
      s.weight_decay = kWeightDecay;
      s.adamw_mode = true;
      s.step = ++step;
      ops::adam_step(param.data_ptr<float>(), grad.data_ptr<float>(), exp_avg.data_ptr<float>(),
                     exp_avg_sq.data_ptr<float>(), n, s);
    };
    auto memory_step = [&] {
      memory_only_step(scratch_p.data_ptr<float>(), grad.data_ptr<float>(),
                       scratch_m.data_ptr<float>(), scratch_v.data_ptr<float>(), n);
    };
    // A warm-up step of each (first touch of pages, thread teams), then the three taken in
    // turn, so that a change in the machine's load falls on all of them alike.
    torch_step();
    ours_step();
    memory_step();
    std::vector<double> torch_times, ours_times, memory_times;
    for (int i = 0; i < steps; ++i) {
      torch_times.push_back(time_ms(torch_step));
      ours_times.push_back(time_ms(ours_step));
      memory_times.push_back(time_ms(memory_step));
    }
    const double torch_ms = median(torch_times);
    const double ours_ms = median(ours_times);
    const double memory_ms = median(memory_times);
    const double gbps = 28.0 * static_cast<double>(n) / (ours_ms * 1e6);
    std::printf("%7d %18.1f %14.1f %14.1f %11.2fx %11.0f%% %10.1f\n", threads, torch_ms, ours_ms,
                memory_ms, torch_ms / ours_ms, 100.0 * memory_ms / ours_ms, gbps);
  }
  return 0;
}
