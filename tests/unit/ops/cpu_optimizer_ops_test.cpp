// The CPU optimizer ops (ops/cpu/: cpu_adam, cpu_adagrad, cpu_lion) against plain
// double-precision references written out below, on every SIMD level this CPU can run (the
// others are skipped, visibly): 10 steps, sizes that are multiples of no vector width, every
// mode, the bf16/fp16 copies, untouched memory past the end, the split across threads, and
// the dispatcher's DS_CPU_SIMD override and its errors.
//
// Error bounds, after 10 steps, with values of order 1 (parameters and gradients drawn from
// [-1, 1]): |kernel - reference| <= 1e-6 * max(1, |reference|) for parameters and states.
// A float step rounds each result to 2^-24 relative, about 6e-8, and ten steps add at most
// ten such roundings; 1e-6 leaves room for that and nothing more (a wrong bias correction or
// a missed weight-decay term is off by 1e-3 or more). The bf16 copy must equal the rounding
// (to nearest even) of the kernel's own updated fp32 parameter bit for bit, and so must the
// fp16 copy (F16C rounds exactly, so no ulp of slack is needed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "cpu/common/half_convert.h"
#include "cpu/common/simd_level.h"
#include "cpu/common/simd_variants.h"
#include "cpu/cpu_adagrad/cpu_adagrad.h"
#include "cpu/cpu_adam/cpu_adam.h"
#include "cpu/cpu_lion/cpu_lion.h"
#include "scoped_env.h"

namespace deepspeed::ops {

// Test names and failure messages print the level's name.
void PrintTo(SimdLevel level, std::ostream* os) { *os << to_string(level); }

namespace {

using deepspeed::testing::ScopedEnv;

constexpr int kSteps = 10;
constexpr double kTolerance = 1e-6;
const std::vector<int64_t> kSizes = {1, 7, 33, 1000 + 3};
// Past kParallelMinElements, so that the work is split across threads.
constexpr int64_t kLargeSize = 100000 + 3;
// Elements past n that a kernel must leave alone.
constexpr int64_t kGuard = 17;
constexpr float kGuardValue = -12345.0f;
constexpr uint16_t kCopyPoison = 0xDEAD;

std::vector<float> uniform(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(static_cast<size_t>(n + kGuard), kGuardValue);
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = dist(rng);
  return out;
}

std::vector<double> widen(const std::vector<float>& v, int64_t n) {
  return std::vector<double>(v.begin(), v.begin() + n);
}

// |got - want| <= kTolerance * max(1, |want|) for the first n elements, and the guard
// elements after them untouched.
::testing::AssertionResult close(const std::vector<float>& got, const std::vector<double>& want,
                                 int64_t n, const char* what,
                                 const std::vector<bool>* skip = nullptr) {
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    if (skip && (*skip)[k]) continue;
    const double bound = kTolerance * std::max(1.0, std::abs(want[k]));
    if (!(std::abs(got[k] - want[k]) <= bound)) {
      return ::testing::AssertionFailure() << what << "[" << i << "] = " << got[k] << ", reference "
                                           << want[k] << " (bound " << bound << ")";
    }
  }
  for (int64_t i = n; i < n + kGuard; ++i) {
    if (got[static_cast<size_t>(i)] != kGuardValue) {
      return ::testing::AssertionFailure() << what << "[" << i << "] past the end was written";
    }
  }
  return ::testing::AssertionSuccess();
}

// The copy equals the rounding of the kernel's own fp32 parameters, and nothing past n.
::testing::AssertionResult copy_matches(const std::vector<uint16_t>& copy,
                                        const std::vector<float>& param, int64_t n, CopyType type) {
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    const uint16_t want =
        type == CopyType::BFloat16 ? half::float_to_bf16(param[k]) : half::float_to_half(param[k]);
    if (copy[k] != want) {
      return ::testing::AssertionFailure()
             << "copy[" << i << "] = 0x" << std::hex << copy[k] << ", expected 0x" << want
             << " for " << std::dec << param[k];
    }
  }
  for (int64_t i = n; i < n + kGuard; ++i) {
    if (copy[static_cast<size_t>(i)] != kCopyPoison) {
      return ::testing::AssertionFailure() << "copy[" << i << "] past the end was written";
    }
  }
  return ::testing::AssertionSuccess();
}

std::string describe(CopyType copy) {
  switch (copy) {
    case CopyType::None:
      return "none";
    case CopyType::BFloat16:
      return "bf16";
    case CopyType::Float16:
      return "fp16";
  }
  return "?";
}

// ------------------------------------------------------------------- double references

// src/optim/adam.h's non-torch_adam update (FusedAdam's ordering), in double.
struct AdamReference {
  std::vector<double> p, m, v;
  void step(const std::vector<float>& grad, const AdamStep& s) {
    const double t = static_cast<double>(s.step);
    const double bc1 = s.bias_correction ? 1.0 - std::pow(s.beta1, t) : 1.0;
    const double bc2 = s.bias_correction ? 1.0 - std::pow(s.beta2, t) : 1.0;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (!s.adamw_mode && s.weight_decay != 0.0) g += s.weight_decay * p[i];
      m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * g;
      v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * g * g;
      double update = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + s.eps);
      if (s.adamw_mode && s.weight_decay != 0.0) update += s.weight_decay * p[i];
      p[i] -= s.lr * update;
    }
  }
};

// src/optim/adagrad.h (torch.optim.Adagrad with lr_decay folded into lr), in double.
struct AdagradReference {
  std::vector<double> p, sum;
  void step(const std::vector<float>& grad, const AdagradStep& s) {
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (s.weight_decay != 0.0) g += s.weight_decay * p[i];
      sum[i] += g * g;
      p[i] -= s.lr * g / (std::sqrt(sum[i]) + s.eps);
    }
  }
};

// src/optim/lion.h, in double. sign() jumps at 0, so where the interpolation is too close
// to 0 for float rounding to decide its sign the element is marked undecided and its
// parameter left out of the comparison from then on (its momentum does not depend on it).
struct LionReference {
  std::vector<double> p, m;
  std::vector<bool> undecided;
  void step(const std::vector<float>& grad, const LionStep& s) {
    for (size_t i = 0; i < p.size(); ++i) {
      const double g = grad[i];
      const double c = s.beta1 * m[i] + (1.0 - s.beta1) * g;
      const double scale = std::abs(s.beta1 * m[i]) + std::abs((1.0 - s.beta1) * g);
      if (std::abs(c) <= 1e-5 * scale) undecided[i] = true;
      const double sign = c > 0.0 ? 1.0 : c < 0.0 ? -1.0 : 0.0;
      p[i] = p[i] * (1.0 - s.lr * s.weight_decay) - s.lr * sign;
      m[i] = s.beta2 * m[i] + (1.0 - s.beta2) * g;
    }
  }
};

// --------------------------------------------------------------- tests on every level

class CpuOptimizerOps : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (!is_runnable(GetParam())) {
      GTEST_SKIP() << "SIMD level " << to_string(GetParam())
                   << " cannot run here (runnable: " << join(runnable_simd_levels()) << ")";
    }
  }
  SimdLevel level() const { return GetParam(); }
};

// One run of `steps` Adam steps from fixed random data; returns the final arrays.
struct AdamRun {
  std::vector<float> p, m, v;
  std::vector<uint16_t> copy;
  AdamReference ref;
};

AdamRun run_adam(SimdLevel level, int64_t n, AdamStep s, CopyType copy, uint32_t seed,
                 bool check_copy_every_step = false) {
  std::mt19937 rng(seed);
  AdamRun r;
  r.p = uniform(rng, n, -1.0f, 1.0f);
  // Moments as after some earlier steps: v must be >= 0.
  r.m = uniform(rng, n, -0.1f, 0.1f);
  r.v = uniform(rng, n, 0.0f, 0.01f);
  r.copy.assign(static_cast<size_t>(n + kGuard), kCopyPoison);
  r.ref = {widen(r.p, n), widen(r.m, n), widen(r.v, n)};
  for (int t = 1; t <= kSteps; ++t) {
    const std::vector<float> g = uniform(rng, n, -1.0f, 1.0f);
    s.step = t;
    adam_step(r.p.data(), g.data(), r.m.data(), r.v.data(), n, s,
              copy == CopyType::None ? nullptr : r.copy.data(), copy, level);
    r.ref.step(g, s);
    if (check_copy_every_step && copy != CopyType::None) {
      EXPECT_TRUE(copy_matches(r.copy, r.p, n, copy)) << "step " << t;
    }
  }
  return r;
}

TEST_P(CpuOptimizerOps, AdamMatchesTheDoubleReferenceInEveryMode) {
  for (int64_t n : kSizes) {
    for (bool adamw : {true, false}) {
      for (bool bias_correction : {true, false}) {
        for (double wd : {0.0, 0.1}) {
          SCOPED_TRACE("n=" + std::to_string(n) + " adamw=" + std::to_string(adamw) +
                       " bias_correction=" + std::to_string(bias_correction) +
                       " wd=" + std::to_string(wd));
          AdamStep s;
          s.lr = 1e-2;
          s.beta1 = 0.9;
          s.beta2 = 0.999;
          s.eps = 1e-8;
          s.weight_decay = wd;
          s.adamw_mode = adamw;
          s.bias_correction = bias_correction;
          const AdamRun r =
              run_adam(level(), n, s, CopyType::None, 1234u + static_cast<uint32_t>(n));
          EXPECT_TRUE(close(r.p, r.ref.p, n, "param"));
          EXPECT_TRUE(close(r.m, r.ref.m, n, "exp_avg"));
          EXPECT_TRUE(close(r.v, r.ref.v, n, "exp_avg_sq"));
        }
      }
    }
  }
}

TEST_P(CpuOptimizerOps, AdamWritesTheRoundedCopyInTheSamePass) {
  for (CopyType copy : {CopyType::BFloat16, CopyType::Float16}) {
    for (int64_t n : kSizes) {
      SCOPED_TRACE(describe(copy) + " n=" + std::to_string(n));
      AdamStep s;
      s.lr = 1e-2;
      s.weight_decay = 0.1;
      const AdamRun r = run_adam(level(), n, s, copy, 99u, /*check_copy_every_step=*/true);
      EXPECT_TRUE(close(r.p, r.ref.p, n, "param"));  // the copy changes nothing else
    }
  }
}

// grad_scale multiplies the gradient as it is read: the same bits as scaling the gradient in
// float first (what torch's grad.mul(scale) does), in L2 mode too where the decay adds after.
TEST_P(CpuOptimizerOps, AdamScalesTheGradientAsItReadsIt) {
  for (int64_t n : kSizes) {
    for (bool adamw : {true, false}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " adamw=" + std::to_string(adamw));
      std::mt19937 rng(77u + static_cast<uint32_t>(n));
      const std::vector<float> p0 = uniform(rng, n, -1.0f, 1.0f);
      const std::vector<float> g = uniform(rng, n, -100.0f, 100.0f);
      AdamStep s;
      s.weight_decay = 0.1;
      s.adamw_mode = adamw;
      s.grad_scale = 1.0 / 384.0;  // an unscale factor that is not a power of two below
      std::vector<float> p1 = p0, m1(n, 0.0f), v1(n, 0.0f);
      adam_step(p1.data(), g.data(), m1.data(), v1.data(), n, s, nullptr, CopyType::None, level());
      std::vector<float> scaled(g.size());
      for (size_t i = 0; i < g.size(); ++i) scaled[i] = g[i] * static_cast<float>(s.grad_scale);
      s.grad_scale = 1.0;
      std::vector<float> p2 = p0, m2(n, 0.0f), v2(n, 0.0f);
      adam_step(p2.data(), scaled.data(), m2.data(), v2.data(), n, s, nullptr, CopyType::None, level());
      EXPECT_EQ(p1, p2);
      EXPECT_EQ(m1, m2);
      EXPECT_EQ(v1, v2);
    }
  }
}

TEST_P(CpuOptimizerOps, AdagradMatchesTheDoubleReference) {
  for (int64_t n : kSizes) {
    for (double wd : {0.0, 0.1}) {
      for (CopyType copy : {CopyType::None, CopyType::BFloat16, CopyType::Float16}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " wd=" + std::to_string(wd) +
                     " copy=" + describe(copy));
        std::mt19937 rng(77u + static_cast<uint32_t>(n));
        std::vector<float> p = uniform(rng, n, -1.0f, 1.0f);
        std::vector<float> sum = uniform(rng, n, 0.0f, 0.5f);
        std::vector<uint16_t> out(static_cast<size_t>(n + kGuard), kCopyPoison);
        AdagradReference ref{widen(p, n), widen(sum, n)};
        AdagradStep s;
        s.lr = 0.1;
        s.eps = 1e-10;
        s.weight_decay = wd;
        for (int t = 1; t <= kSteps; ++t) {
          const std::vector<float> g = uniform(rng, n, -1.0f, 1.0f);
          s.lr = 0.1 / (1.0 + (t - 1) * 0.01);  // lr_decay 0.01, applied by the caller
          adagrad_step(p.data(), g.data(), sum.data(), n, s,
                       copy == CopyType::None ? nullptr : out.data(), copy, level());
          ref.step(g, s);
          if (copy != CopyType::None) {
            EXPECT_TRUE(copy_matches(out, p, n, copy)) << "step " << t;
          }
        }
        EXPECT_TRUE(close(p, ref.p, n, "param"));
        EXPECT_TRUE(close(sum, ref.sum, n, "sum"));
      }
    }
  }
}

TEST_P(CpuOptimizerOps, LionMatchesTheDoubleReference) {
  for (int64_t n : kSizes) {
    for (double wd : {0.0, 0.1}) {
      for (CopyType copy : {CopyType::None, CopyType::BFloat16, CopyType::Float16}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " wd=" + std::to_string(wd) +
                     " copy=" + describe(copy));
        std::mt19937 rng(5u + static_cast<uint32_t>(n));
        std::vector<float> p = uniform(rng, n, -1.0f, 1.0f);
        std::vector<float> m = uniform(rng, n, -0.1f, 0.1f);
        std::vector<uint16_t> out(static_cast<size_t>(n + kGuard), kCopyPoison);
        LionReference ref{widen(p, n), widen(m, n), std::vector<bool>(static_cast<size_t>(n))};
        LionStep s;
        s.lr = 1e-2;
        s.beta1 = 0.9;
        s.beta2 = 0.99;
        s.weight_decay = wd;
        for (int t = 1; t <= kSteps; ++t) {
          const std::vector<float> g = uniform(rng, n, -1.0f, 1.0f);
          lion_step(p.data(), g.data(), m.data(), n, s,
                    copy == CopyType::None ? nullptr : out.data(), copy, level());
          ref.step(g, s);
          if (copy != CopyType::None) {
            EXPECT_TRUE(copy_matches(out, p, n, copy)) << "step " << t;
          }
        }
        int64_t undecided = 0;
        for (bool u : ref.undecided) undecided += u;
        EXPECT_LE(undecided, n / 100) << "too many elements with sign(c) too close to call";
        EXPECT_TRUE(close(p, ref.p, n, "param", &ref.undecided));
        EXPECT_TRUE(close(m, ref.m, n, "exp_avg"));
      }
    }
  }
}

TEST_P(CpuOptimizerOps, LionSignOfZeroIsZeroAndNanPropagates) {
  // c = 0.9 * m + 0.1 * g: zero for m = g = 0, NaN for a NaN gradient.
  const int64_t n = 19;  // a full AVX2 vector, and a tail, for every lane position
  std::vector<float> p(n, 0.5f), m(n, 0.0f), g(n, 0.0f);
  g[3] = std::nanf("");
  g[17] = std::nanf("");
  LionStep s;
  s.lr = 0.25;
  lion_step(p.data(), g.data(), m.data(), n, s, nullptr, CopyType::None, level());
  for (int64_t i = 0; i < n; ++i) {
    if (i == 3 || i == 17) {
      EXPECT_TRUE(std::isnan(p[i])) << i;
    } else {
      EXPECT_EQ(p[i], 0.5f) << i;
    }
  }
}

// The threads' chunks must not change any result: the same data updated with 1, 2 and 3
// threads gives the same bits.
TEST_P(CpuOptimizerOps, ResultsDoNotDependOnTheThreadCount) {
#ifndef _OPENMP
  GTEST_SKIP() << "built without OpenMP";
#else
  const int saved = omp_get_max_threads();
  auto run_all = [&](int threads) {
    omp_set_num_threads(threads);
    std::mt19937 rng(2024);
    const int64_t n = kLargeSize;
    std::vector<float> g = uniform(rng, n, -1.0f, 1.0f);
    std::vector<float> p = uniform(rng, n, -1.0f, 1.0f);
    std::vector<float> m(static_cast<size_t>(n + kGuard), 0.0f), v(m);
    std::vector<uint16_t> out(static_cast<size_t>(n + kGuard), kCopyPoison);
    AdamStep s;
    s.weight_decay = 0.01;
    adam_step(p.data(), g.data(), m.data(), v.data(), n, s, out.data(), CopyType::BFloat16,
              level());
    adagrad_step(p.data(), g.data(), v.data(), n, AdagradStep{}, out.data(), CopyType::Float16,
                 level());
    lion_step(p.data(), g.data(), m.data(), n, LionStep{}, nullptr, CopyType::None, level());
    std::vector<float> all = p;
    all.insert(all.end(), m.begin(), m.end());
    all.insert(all.end(), v.begin(), v.end());
    for (uint16_t c : out) all.push_back(c);
    return all;
  };
  const std::vector<float> one = run_all(1);
  const std::vector<float> two = run_all(2);
  const std::vector<float> three = run_all(3);
  omp_set_num_threads(saved);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0);
#endif
}

TEST_P(CpuOptimizerOps, EmptyArraysAreANoOp) {
  AdamStep s;
  EXPECT_NO_THROW(
      adam_step(nullptr, nullptr, nullptr, nullptr, 0, s, nullptr, CopyType::None, level()));
  EXPECT_NO_THROW(adagrad_step(nullptr, nullptr, nullptr, 0, AdagradStep{}, nullptr,
                               CopyType::BFloat16, level()));
  EXPECT_NO_THROW(
      lion_step(nullptr, nullptr, nullptr, 0, LionStep{}, nullptr, CopyType::Float16, level()));
}

INSTANTIATE_TEST_SUITE_P(AllLevels, CpuOptimizerOps,
                         ::testing::Values(SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512),
                         [](const ::testing::TestParamInfo<SimdLevel>& info) {
                           return std::string(to_string(info.param));
                         });

// ----------------------------------------------------------------- half conversions

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t f16c_half(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, 0));  // round to nearest even
}
#endif

// The integer float->half conversion (scalar kernels, CPUs without F16C) against F16C at
// every rounding boundary: each half value, its float neighbours, and the exact midpoints
// between consecutive halves (the ties) and theirs.
TEST(HalfConversion, ScalarMatchesF16cAtEveryBoundary) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "no F16C to compare with on this processor";
#else
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_F16C)) {
    GTEST_SKIP() << "this CPU has no F16C";
  }
  std::vector<float> probes;
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0) continue;  // NaNs: below
    const float f = half::half_to_float(static_cast<uint16_t>(h));
    probes.insert(probes.end(), {f, std::nextafter(f, 1e30f), std::nextafter(f, -1e30f)});
    if ((h & 0x7FFFu) < 0x7C00u) {
      const float next = half::half_to_float(static_cast<uint16_t>(h + 1));
      if (std::isfinite(next)) {
        const float mid = static_cast<float>((static_cast<double>(f) + next) / 2.0);
        probes.insert(probes.end(), {mid, std::nextafter(mid, 1e30f), std::nextafter(mid, -1e30f)});
      }
    }
  }
  probes.insert(probes.end(), {65504.0f, 65519.99f, 65520.0f, 1e30f, -1e30f, 1e-30f, 1e-45f,
                               INFINITY, -INFINITY, 5.9604645e-8f, 2.9802322e-8f});
  for (float f : probes) {
    ASSERT_EQ(half::float_to_half(f), f16c_half(f))
        << "float " << f << " (bits 0x" << std::hex << half::float_bits(f) << ")";
  }
  // NaNs stay NaNs (quiet, sign and top of the payload kept, as F16C does).
  for (uint32_t bits : {0x7FC00000u, 0xFFC00001u, 0x7F800001u, 0x7FBFFFFFu}) {
    const float nan = half::bits_float(bits);
    EXPECT_EQ(half::float_to_half(nan), f16c_half(nan)) << std::hex << bits;
  }
#endif
}

TEST(HalfConversion, Bf16RoundsToNearestEven) {
  EXPECT_EQ(half::float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(half::float_to_bf16(half::bits_float(0x3F808000u)), 0x3F80);  // tie, even below
  EXPECT_EQ(half::float_to_bf16(half::bits_float(0x3F818000u)), 0x3F82);  // tie, even above
  EXPECT_EQ(half::float_to_bf16(half::bits_float(0x3F808001u)), 0x3F81);
  EXPECT_EQ(half::float_to_bf16(half::bits_float(0x7F7FFFFFu)), 0x7F80);  // rounds to inf
  EXPECT_EQ(half::float_to_bf16(-INFINITY), 0xFF80);
  EXPECT_EQ(half::float_to_bf16(std::nanf("")), 0x7FC0);
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = half::bf16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(half::float_to_bf16(f), h);
  }
}

// ------------------------------------------------------------------------ dispatcher


template <class F>
std::string simd_error(F&& f) {
  try {
    f();
  } catch (const SimdError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a SimdError";
  return "";
}

TEST(SimdDispatch, NamesRoundTrip) {
  for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
    EXPECT_EQ(parse_simd_level(to_string(level)), level);
  }
  EXPECT_EQ(parse_simd_level("AVX2"), std::nullopt);
  EXPECT_EQ(parse_simd_level("sse4"), std::nullopt);
  EXPECT_EQ(join({SimdLevel::Avx2, SimdLevel::Scalar}), "avx2, scalar");
}

int probe_avx512() { return 512; }
int probe_avx2() { return 2; }
int probe_scalar() { return 1; }

TEST(SimdDispatch, VariantsAreIndexedByLevel) {
  constexpr SimdVariants<int (*)()> probes = DS_SIMD_VARIANTS(probe);
  EXPECT_EQ(probes[SimdLevel::Scalar](), 1);
#if DS_CPU_X86_VARIANTS
  EXPECT_EQ(probes[SimdLevel::Avx2](), 2);
  EXPECT_EQ(probes[SimdLevel::Avx512](), 512);
#else
  EXPECT_EQ(probes[SimdLevel::Avx2](), 1);
  EXPECT_EQ(probes[SimdLevel::Avx512](), 1);
#endif
  EXPECT_EQ(best_simd_level(), runnable_simd_levels().front());
}

TEST(SimdDispatch, RunnableLevelsAreBuiltBestFirstAndEndWithScalar) {
  const auto built = built_simd_levels();
  const auto runnable = runnable_simd_levels();
#if defined(__x86_64__)
  EXPECT_EQ(join(built), "avx512, avx2, scalar");
#else
  EXPECT_EQ(join(built), "scalar");
#endif
  ASSERT_FALSE(runnable.empty());
  EXPECT_EQ(runnable.back(), SimdLevel::Scalar);
  EXPECT_EQ(best_simd_level(), runnable.front());
  for (SimdLevel level : runnable) {
    EXPECT_NE(std::find(built.begin(), built.end(), level), built.end());
    EXPECT_TRUE(is_runnable(level));
  }
  std::printf("[          ] SIMD levels built: %s; runnable here: %s\n", join(built).c_str(),
              join(runnable).c_str());
}

TEST(SimdDispatch, EnvironmentOverridePicksTheLevel) {
  {
    ScopedEnv env(kSimdLevelEnv, nullptr);
    EXPECT_EQ(selected_simd_level(), best_simd_level());
    EXPECT_EQ(resolve_simd_level(std::nullopt), best_simd_level());
  }
  {
    ScopedEnv env(kSimdLevelEnv, "");
    EXPECT_EQ(selected_simd_level(), best_simd_level());
  }
  for (SimdLevel level : runnable_simd_levels()) {
    ScopedEnv env(kSimdLevelEnv, to_string(level));
    EXPECT_EQ(selected_simd_level(), level);
    // An explicit level wins over the environment.
    EXPECT_EQ(resolve_simd_level(SimdLevel::Scalar), SimdLevel::Scalar);
  }
}

TEST(SimdDispatch, KernelsFollowTheOverride) {
  // DS_CPU_SIMD=scalar and an explicit scalar level give the same bits.
  std::mt19937 rng(3);
  const int64_t n = 1003;
  const std::vector<float> g = uniform(rng, n, -1.0f, 1.0f);
  const std::vector<float> p0 = uniform(rng, n, -1.0f, 1.0f);
  std::vector<float> p1 = p0, m1(p0.size(), 0.0f), v1(p0.size(), 0.0f);
  std::vector<float> p2 = p0, m2 = m1, v2 = v1;
  AdamStep s;
  s.weight_decay = 0.1;
  adam_step(p1.data(), g.data(), m1.data(), v1.data(), n, s, nullptr, CopyType::None,
            SimdLevel::Scalar);
  {
    ScopedEnv env(kSimdLevelEnv, "scalar");
    adam_step(p2.data(), g.data(), m2.data(), v2.data(), n, s);
  }
  EXPECT_EQ(std::memcmp(p1.data(), p2.data(), p1.size() * sizeof(float)), 0);
}

TEST(SimdDispatch, UnknownNameIsAnErrorNamingTheVariableAndTheChoices) {
  ScopedEnv env(kSimdLevelEnv, "sse9");
  const std::string message = simd_error([] { selected_simd_level(); });
  EXPECT_NE(message.find("DS_CPU_SIMD='sse9'"), std::string::npos) << message;
  EXPECT_NE(message.find("scalar, avx2 or avx512"), std::string::npos) << message;
  EXPECT_NE(message.find("runnable here: "), std::string::npos) << message;
  // The kernels raise it too, rather than falling back.
  float x = 0.0f;
  EXPECT_THROW(lion_step(&x, &x, &x, 0, LionStep{}), SimdError);
}

TEST(SimdDispatch, ALevelThisMachineCannotRunIsAnError) {
  std::optional<SimdLevel> missing;
  for (SimdLevel level : {SimdLevel::Avx512, SimdLevel::Avx2}) {
    if (!is_runnable(level)) missing = level;
  }
  if (!missing) GTEST_SKIP() << "every SIMD level runs on this CPU; nothing to refuse";
  {
    ScopedEnv env(kSimdLevelEnv, to_string(*missing));
    const std::string message = simd_error([] { selected_simd_level(); });
    EXPECT_NE(message.find(std::string("'") + to_string(*missing) + "'"), std::string::npos)
        << message;
    EXPECT_NE(message.find("runnable here: " + join(runnable_simd_levels())), std::string::npos)
        << message;
  }
  float p = 1.0f, g = 1.0f, m = 0.0f, v = 0.0f;
  EXPECT_THROW(adam_step(&p, &g, &m, &v, 1, AdamStep{}, nullptr, CopyType::None, *missing),
               SimdError);
  EXPECT_THROW(adagrad_step(&p, &g, &v, 1, AdagradStep{}, nullptr, CopyType::None, *missing),
               SimdError);
  EXPECT_EQ(p, 1.0f);  // refused before touching anything
}

TEST(OpArguments, AreChecked) {
  float x = 0.0f;
  EXPECT_THROW(adam_step(&x, &x, &x, &x, -1, AdamStep{}), std::invalid_argument);
  AdamStep zeroth;
  zeroth.step = 0;
  EXPECT_THROW(adam_step(&x, &x, &x, &x, 1, zeroth), std::invalid_argument);
  EXPECT_THROW(adam_step(nullptr, &x, &x, &x, 1, AdamStep{}), std::invalid_argument);
  EXPECT_THROW(adam_step(&x, &x, &x, &x, 1, AdamStep{}, nullptr, CopyType::BFloat16),
               std::invalid_argument);
  EXPECT_THROW(adagrad_step(&x, nullptr, &x, 1, AdagradStep{}), std::invalid_argument);
  EXPECT_THROW(lion_step(&x, &x, &x, 1, LionStep{}, nullptr, CopyType::Float16),
               std::invalid_argument);
}

}  // namespace
}  // namespace deepspeed::ops
