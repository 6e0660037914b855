// The CPU sum of squares (ops/cpu/common/squared_sum.h) on every SIMD level this CPU runs:
// against a double-precision sum, at sizes with ragged tails, independent of the thread
// count, and the errors for bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu/common/squared_sum.h"

namespace deepspeed::ops {
namespace {

std::vector<float> normals(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(gen);
  return x;
}

double exact(const std::vector<float>& x) {
  long double s = 0.0L;
  for (float v : x) s += static_cast<long double>(v) * v;
  return static_cast<double>(s);
}

class SquaredSum : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (!is_runnable(GetParam())) {
      GTEST_SKIP() << "SIMD level " << to_string(GetParam()) << " cannot run here (runnable: "
                   << join(runnable_simd_levels()) << ")";
    }
  }
};

TEST_P(SquaredSum, MatchesAnExactSumWithinOneInAMillion) {
  // Whole blocks, a ragged last block, fewer elements than one vector, and several million
  // elements (256 fp32 additions per lane and block: a few 1e-7 at most).
  for (int64_t n : {int64_t{1}, int64_t{15}, int64_t{17}, kSquaredSumBlock, kSquaredSumBlock * 3 + 5,
                    int64_t{3'000'001}}) {
    const auto x = normals(n, static_cast<uint32_t>(n), 3.0f);
    const double want = exact(x);
    EXPECT_NEAR(squared_sum(x.data(), n, GetParam()), want, 1e-6 * want) << "n = " << n;
  }
}

TEST_P(SquaredSum, DoesNotDependOnTheThreadCount) {
#ifdef _OPENMP
  const auto x = normals(2'000'003, 11, 100.0f);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = squared_sum(x.data(), static_cast<int64_t>(x.size()), GetParam());
  omp_set_num_threads(3);
  const double three = squared_sum(x.data(), static_cast<int64_t>(x.size()), GetParam());
  omp_set_num_threads(threads);
  EXPECT_EQ(one, three);
#else
  GTEST_SKIP() << "built without OpenMP: one thread only";
#endif
}

INSTANTIATE_TEST_SUITE_P(Levels, SquaredSum,
                         ::testing::Values(SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512),
                         [](const ::testing::TestParamInfo<SimdLevel>& info) { return to_string(info.param); });

TEST(SquaredSumArguments, EmptyIsZeroAndBadArgumentsAreErrors) {
  EXPECT_EQ(squared_sum(nullptr, 0), 0.0);
  const float one = 2.0f;
  EXPECT_EQ(squared_sum(&one, 1), 4.0);
  EXPECT_THROW(squared_sum(&one, -1), std::invalid_argument);
  EXPECT_THROW(squared_sum(nullptr, 3), std::invalid_argument);
}

}  // namespace
}  // namespace deepspeed::ops
