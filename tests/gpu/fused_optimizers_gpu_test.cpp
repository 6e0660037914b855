// The fused CUDA optimizers (ops/cuda/fused_adam, fused_lamb) through src/optim's Adam and
// Lamb, against the formulas of src/optim/adam.h and lamb.h evaluated in double on the host.
// Error bound, stated: after 5 steps from O(1) values with lr 1e-3 and N(0, 1) gradients,
// every parameter is within 2e-6 (absolute) of the double result, exp_avg within 1e-7
// absolute + 1e-6 relative (it is a sum of terms of either sign, ~0.1 each, so its error is
// absolute), exp_avg_sq within 1e-6 relative (+1e-12). Float rounding of about ten
// operations per step is ~1e-7; a wrong formula is far outside (a missing bias correction
// moves p by ~1e-3). Parameters: one element in 100000 may be off by up to 2·lr per step where
// the L2 term nearly cancels the gradient (see expect_close).
// The shapes cross the kernel's chunk (65536), vector (4) and launch (30 tensors, 320
// chunks) boundaries. bf16 copies must equal the fp32 result rounded, exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include <deepspeed/optimizer.h>

#include "optim/fused_cuda.h"
#include "optim/lamb.h"

namespace deepspeed {
namespace {

std::vector<int64_t> shapes() {
  std::vector<int64_t> s = {1, 3, 4, 7, 65536, 65537, 131071, 1000, 21 * 1024 * 1024 + 5};
  for (int i = 0; i < 40; ++i) s.push_back(17 + 31 * i);  // more tensors than one launch holds
  return s;
}

struct Case {
  std::vector<torch::Tensor> params;  // CUDA fp32
  std::vector<torch::Tensor> grads;   // per step, CPU double, concatenated per tensor
};

class FusedOptimizers : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU on this machine";
    if (!fused_cuda_detail::adam_available()) GTEST_SKIP() << "this build has no fused_adam op";
  }
};

// Adam in double, on the host: the formula of src/optim/adam.h.
void adam_reference(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m,
                    std::vector<double>& v, int step, bool adamw, double lr, double wd, double scale) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  for (size_t i = 0; i < p.size(); ++i) {
    double gi = g[i] * scale;
    if (!adamw) gi += wd * p[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    double u = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
    if (adamw) u += wd * p[i];
    p[i] -= lr * u;
  }
}

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// Every element within abs + rel·|want|, except at most `outliers` elements, which must still
// be within `outlier_bound`. (Adam's first steps move each weight by about ±lr whatever the
// gradient's size, so where L2 decay nearly cancels the gradient, float rounding can change
// one element's step by up to 2·lr; a wrong formula moves every element.)
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double abs, double rel,
                  const std::string& what, size_t outliers = 0, double outlier_bound = 0) {
  ASSERT_EQ(got.size(), want.size());
  double worst = 0;
  size_t at = 0, beyond = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double excess = std::abs(got[i] - want[i]) - (abs + rel * std::abs(want[i]));
    if (excess > 0) ++beyond;
    if (excess > worst) {
      worst = excess;
      at = i;
    }
  }
  if (beyond <= outliers) {
    EXPECT_LE(std::abs(got[at] - want[at]), outlier_bound + abs + rel * std::abs(want[at]))
        << what << ": element " << at << " is " << got[at] << ", reference " << want[at];
    return;
  }
  EXPECT_LE(beyond, outliers) << what << ": " << beyond << " elements out of bounds; the worst, element " << at
                              << ", is " << got[at] << ", reference " << want[at];
}

void run_adam(bool adamw, torch::ScalarType grad_type, bool with_copy) {
  torch::manual_seed(3);
  const double lr = 1e-3, wd = 0.01, scale = 0.5;
  std::vector<torch::Tensor> params, copies;
  std::vector<std::vector<double>> p_ref, m_ref, v_ref;
  for (int64_t n : shapes()) {
    auto p = torch::randn({n}, torch::TensorOptions().device(torch::kCUDA));
    params.push_back(p);
    copies.push_back(with_copy ? torch::empty({n}, p.options().dtype(torch::kBFloat16)) : torch::Tensor());
    p_ref.push_back(to_vector(p));
    m_ref.emplace_back(n, 0.0);
    v_ref.emplace_back(n, 0.0);
  }
  ParamGroup group;
  group.params = params;
  auto opt = make_optimizer(adamw ? "AdamW" : "Adam",
                            {{"lr", lr}, {"weight_decay", wd}, {"adam_w_mode", adamw}}, {group});
  for (int step = 1; step <= 5; ++step) {
    std::vector<torch::Tensor> grads;
    for (size_t t = 0; t < params.size(); ++t) {
      auto g = torch::randn_like(params[t]).to(grad_type);
      grads.push_back(g);
      adam_reference(p_ref[t], to_vector(g), m_ref[t], v_ref[t], step, adamw, lr, wd, scale);
    }
    opt->step_from(grads, scale, with_copy ? copies : std::vector<torch::Tensor>{});
  }
  for (size_t t = 0; t < params.size(); ++t) {
    const std::string what = "tensor " + std::to_string(t) + " (" + std::to_string(params[t].numel()) + ")";
    expect_close(to_vector(params[t]), p_ref[t], 2e-6, 0, what + " param", params[t].numel() / 100000, 2 * lr * 5);
    expect_close(to_vector(opt->state()[t].at("exp_avg")), m_ref[t], 1e-7, 1e-6, what + " exp_avg");
    expect_close(to_vector(opt->state()[t].at("exp_avg_sq")), v_ref[t], 1e-12, 1e-6, what + " exp_avg_sq");
    EXPECT_EQ(opt->state()[t].at("step").item<double>(), 5.0);
    if (with_copy) {
      EXPECT_TRUE(torch::equal(copies[t], params[t].to(torch::kBFloat16))) << what;
    }
  }
}

TEST_F(FusedOptimizers, AdamWFp32GradientsAgainstDoubleReference) { run_adam(true, torch::kFloat32, false); }
TEST_F(FusedOptimizers, AdamL2Fp32GradientsAgainstDoubleReference) { run_adam(false, torch::kFloat32, false); }
TEST_F(FusedOptimizers, AdamWBf16GradientsWriteBf16Copies) { run_adam(true, torch::kBFloat16, true); }
TEST_F(FusedOptimizers, AdamWFp16GradientsWriteBf16Copies) { run_adam(true, torch::kFloat16, true); }

TEST_F(FusedOptimizers, StepUsesGradAndMatchesStepFrom) {
  // step() (gradients in .grad) and step_from (gradients given, scaled) are one update.
  torch::manual_seed(4);
  auto a = torch::randn({100003}, torch::TensorOptions().device(torch::kCUDA));
  auto b = a.clone();
  auto g = torch::randn_like(a);
  ParamGroup ga, gb;
  ga.params = {a};
  gb.params = {b};
  auto oa = make_optimizer("AdamW", {{"lr", 1e-3}}, {ga});
  auto ob = make_optimizer("AdamW", {{"lr", 1e-3}}, {gb});
  a.mutable_grad() = g * 0.25;
  oa->step();
  ob->step_from({g}, 0.25, {});
  EXPECT_TRUE(torch::allclose(a, b, 0, 1e-7));
}

void lamb_reference(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m,
                    std::vector<double>& v, int step, double lr, double wd, double& coeff) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  std::vector<double> u(p.size());
  double pn = 0, un = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    u[i] = m[i] / (std::sqrt(v[i]) + eps) + wd * p[i];
    pn += p[i] * p[i];
    un += u[i] * u[i];
  }
  pn = std::sqrt(pn);
  un = std::sqrt(un);
  coeff = (pn != 0 && un != 0) ? std::clamp(pn / un, 0.01, 10.0) : 1.0;
  const double step_size = lr * std::sqrt(1 - std::pow(b2, step)) / (1 - std::pow(b1, step));
  for (size_t i = 0; i < p.size(); ++i) p[i] -= step_size * coeff * u[i];
}

TEST_F(FusedOptimizers, LambAgainstDoubleReferenceWithTrustRatios) {
  if (!fused_cuda_detail::lamb_available()) GTEST_SKIP() << "this build has no fused_lamb op";
  torch::manual_seed(6);
  const double lr = 1e-3, wd = 0.01;
  std::vector<torch::Tensor> params;
  std::vector<std::vector<double>> p_ref, m_ref, v_ref;
  for (int64_t n : shapes()) {
    // Small tensors get large values so that some trust ratios hit the clamp at 10.
    auto p = torch::randn({n}, torch::TensorOptions().device(torch::kCUDA)) * (n < 100 ? 50.0 : 0.1);
    params.push_back(p);
    p_ref.push_back(to_vector(p));
    m_ref.emplace_back(n, 0.0);
    v_ref.emplace_back(n, 0.0);
  }
  // Zero weights and zero gradients stay zero: ||p|| = ||u|| = 0, ratio 1.
  params.push_back(torch::zeros({5}, torch::TensorOptions().device(torch::kCUDA)));
  p_ref.emplace_back(5, 0.0);
  m_ref.emplace_back(5, 0.0);
  v_ref.emplace_back(5, 0.0);
  ParamGroup group;
  group.params = params;
  auto opt = make_optimizer("Lamb", {{"lr", lr}, {"weight_decay", wd}}, {group});
  std::vector<double> coeffs(params.size());
  for (int step = 1; step <= 5; ++step) {
    for (size_t t = 0; t < params.size(); ++t) {
      params[t].mutable_grad() = t + 1 == params.size() ? torch::zeros_like(params[t]) : torch::randn_like(params[t]);
      lamb_reference(p_ref[t], to_vector(params[t].grad()), m_ref[t], v_ref[t], step, lr, wd, coeffs[t]);
    }
    opt->step();
  }
  const auto& got = dynamic_cast<const Lamb&>(*opt).lamb_coeffs();
  ASSERT_EQ(got.size(), params.size());
  for (size_t t = 0; t < params.size(); ++t) {
    const std::string what = "tensor " + std::to_string(t);
    EXPECT_NEAR(got[t], coeffs[t], 1e-5 * coeffs[t]) << what;
    expect_close(to_vector(params[t]), p_ref[t], 2e-6, 2e-6, what + " param");
    expect_close(to_vector(opt->state()[t].at("exp_avg")), m_ref[t], 1e-7, 1e-6, what + " exp_avg");
  }
  EXPECT_EQ(got.back(), 1.0);
  // The clamp was exercised (the large small tensors' ratios hit max_coeff).
  EXPECT_GT(std::count(coeffs.begin(), coeffs.end(), 10.0), 0);
}

}  // namespace
}  // namespace deepspeed
