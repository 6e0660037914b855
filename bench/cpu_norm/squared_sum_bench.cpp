// squared_sum_bench: the sum of squares of one large fp32 array, as the engine takes it for
// gradient clipping when the gradients are in host memory: ops::squared_sum (fixed blocks,
// SIMD, OpenMP) against ATen's linalg_vector_norm(dtype=float) squared, which it replaced.
// For each thread count (OpenMP and ATen both set to it) it prints the median time of
// --repeats runs of each, taken in turn, the GiB/s, and each result's relative error against
// a float64 sum.
//
//   build/bin/squared_sum_bench --elements 268435456 --repeats 7 --threads 1,2
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu/common/simd_level.h"
#include "cpu/common/squared_sum.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
double seconds(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU sum of squares: ops::squared_sum against ATen's linalg_vector_norm"};
  int64_t elements = int64_t{1} << 28;
  int repeats = 7;
  std::vector<int> threads{1, 2};
  app.add_option("--elements", elements, "fp32 elements (default 2^28: 1 GiB)")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "timed runs of each (default 7)")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "thread counts (default 1,2)")->delimiter(',');
  CLI11_PARSE(app, argc, argv);

  torch::manual_seed(0);
  const auto x = torch::randn({elements});
  const double exact = x.to(torch::kFloat64).pow(2).sum().item<double>();
  const float* data = x.data_ptr<float>();
  const double gib = static_cast<double>(elements) * sizeof(float) / (1 << 30);
  std::printf("%lld fp32 elements (%.2f GiB), SIMD level %s, median of %d\n", static_cast<long long>(elements), gib,
              deepspeed::ops::to_string(deepspeed::ops::selected_simd_level()), repeats);
  for (int t : threads) {
#ifdef _OPENMP
    omp_set_num_threads(t);
#endif
    at::set_num_threads(t);
    double ours = 0.0, aten = 0.0;
    std::vector<double> ours_s, aten_s;
    for (int r = 0; r <= repeats; ++r) {  // the first of each is a warm-up
      const double a = seconds([&] { ours = deepspeed::ops::squared_sum(data, elements); });
      const double b = seconds([&] {
        const auto n = at::linalg_vector_norm(x, 2, c10::nullopt, false, torch::kFloat32);
        aten = (n * n).item<double>();
      });
      if (r > 0) {
        ours_s.push_back(a);
        aten_s.push_back(b);
      }
    }
    const double mo = median(ours_s), ma = median(aten_s);
    std::printf("%d thread(s): squared_sum %.1f ms (%.1f GiB/s, error %.1e) | linalg_vector_norm %.1f ms (%.1f GiB/s, "
                "error %.1e) | %.2fx\n",
                t, mo * 1e3, gib / mo, std::abs(ours - exact) / exact, ma * 1e3, gib / ma, std::abs(aten - exact) / exact,
                ma / mo);
  }
  return 0;
}
