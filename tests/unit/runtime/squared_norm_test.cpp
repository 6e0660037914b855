// The CPU sum of squares behind gradient clipping and the overflow check: accurate on tensors
// of ZeRO-Offload's partition sizes (where one float accumulator per thread drifts by
// percents) and the same whatever the thread count.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include "runtime/step/precision.h"

namespace deepspeed {
namespace {

double reference(const torch::Tensor& t) { return t.to(torch::kFloat64).pow(2).sum().item<double>(); }

TEST(SquaredNorm, LargeFp32TensorOnTheCpuIsAccurate) {
  torch::manual_seed(1);
  // 2^25 elements (128 MiB), plus a tail that is not a whole block; and a small tensor.
  const auto big = torch::randn({(int64_t{1} << 25) + 1234});
  const auto small = torch::randn({7});
  const double want = reference(big) + reference(small);
  const double got = squared_norm({big, torch::Tensor(), small}, torch::kCPU).item<double>();
  EXPECT_NEAR(got, want, 1e-6 * want);
}

TEST(SquaredNorm, DoesNotDependOnTheThreadCount) {
  torch::manual_seed(2);
  const auto t = torch::randn({3'000'001}) * 1e3;
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = squared_norm({t}, torch::kCPU).item<double>();
  at::set_num_threads(2);
  const auto two = squared_norm({t}, torch::kCPU).item<double>();
  at::set_num_threads(threads);
  EXPECT_EQ(one, two);
}

TEST(SquaredNorm, InfAndNanComeThrough) {
  auto t = torch::ones({100'000});
  t[77'777] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isinf(squared_norm({t}, torch::kCPU).item<double>()));
  t[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(squared_norm({t}, torch::kCPU).item<double>()));
}

TEST(SquaredNorm, HalfAndStridedTensorsStillCount) {
  const auto a = torch::full({10}, 2.0).to(torch::kBFloat16);  // 40
  const auto b = torch::full({4, 6}, 1.0).t();                 // not contiguous: 24
  EXPECT_DOUBLE_EQ(squared_norm({a, b}, torch::kCPU).item<double>(), 64.0);
}

}  // namespace
}  // namespace deepspeed
