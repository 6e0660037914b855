// The transformer op's CUDA kernels against the block written with torch::nn on the same GPU:
// fp32 tight; fp16 and bf16 within twice the error of the torch::nn block run in the same
// dtype (both measured against fp32); bitwise determinism for a seed (and the stochastic
// mode's bounded difference); each memory option measured in the caching allocator.
#include <gtest/gtest.h>

#if DS_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <deepspeed/transformer.h>

#include "transformer_reference.h"

namespace {

using deepspeed::ops::TransformerConfig;
using deepspeed::ops::TransformerLayer;

#define SKIP_WITHOUT_KERNELS()                                                                        \
  do {                                                                                                \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU";                                  \
    if (!deepspeed::ops::transformer_kernels_built()) GTEST_SKIP() << "the transformer op is not built"; \
  } while (0)

using ds_test::Shape;

// The GPU tests' seed (the CPU tests keep the helper's default).
TransformerConfig gpu_config_for(const Shape& s, bool pre_ln, float dropout) {
  return ds_test::config_for(s, pre_ln, dropout, /*seed=*/77);
}

torch::Tensor make_mask(int kind, int64_t batch, int64_t seq, torch::Dtype dtype) {
  const auto cuda = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
  if (kind == 0) return {};
  if (kind == 2) return torch::triu(torch::full({seq, seq}, -10000.0, cuda), 1).view({1, 1, seq, seq});
  auto m = torch::zeros({batch, 1, 1, seq}, cuda);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t pad = (3 * b) % seq;
    if (pad > 0) m[b].narrow(-1, seq - pad, pad).fill_(-10000.0);
  }
  return m;
}

struct Result {
  torch::Tensor out, dx;
  std::vector<torch::Tensor> grads;
};

template <typename Layer, typename Params, typename... Extra>
Result run(Layer& layer, Params params, const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& dy,
           Extra&&... extra) {
  auto xi = x.detach().clone().requires_grad_(true);
  for (auto& p : layer->parameters()) p.mutable_grad() = torch::Tensor();
  auto out = layer(xi, mask, std::forward<Extra>(extra)...);
  out.backward(dy);
  Result r{out.detach(), xi.grad(), {}};
  for (auto& p : params) r.grads.push_back(p.grad());
  return r;
}

// The largest relative error of the output, the input gradient and every parameter gradient.
std::vector<std::pair<std::string, double>> errors(const Result& got, const Result& want) {
  std::vector<std::pair<std::string, double>> e = {{"output", ds_test::relative_error(got.out, want.out)},
                                                   {"input gradient", ds_test::relative_error(got.dx, want.dx)}};
  for (size_t i = 0; i < want.grads.size(); ++i) {
    e.emplace_back(std::string("gradient of ") + ds_test::kParamNames[i],
                   ds_test::relative_error(got.grads[i], want.grads[i]));
  }
  return e;
}

const Shape kShapes[] = {{2, 16, 64, 4, 256}, {3, 36, 96, 3, 384}, {2, 128, 128, 2, 512}};

TEST(TransformerKernels, MatchTheTorchNnLayerInFp32) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(0);
  for (const auto& s : kShapes) {
    for (bool pre_ln : {true, false}) {
      for (int mask_kind = 0; mask_kind < 3; ++mask_kind) {
        const auto c = gpu_config_for(s, pre_ln, 0.1f);
        TransformerLayer layer(c);
        ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, pre_ln, c.layer_norm_eps);
        ds_test::load_reference(layer, ref);
        layer->to(torch::kCUDA);
        ref->to(torch::kCUDA);
        const auto cuda = torch::TensorOptions().device(torch::kCUDA);
        const auto x = torch::randn({s.batch, s.seq, s.hidden}, cuda), dy = torch::randn({s.batch, s.seq, s.hidden}, cuda);
        const auto mask = make_mask(mask_kind, s.batch, s.seq, torch::kFloat);
        const auto got = run(layer, ds_test::layer_params(layer), x, mask, dy);
        ASSERT_TRUE(layer->last_forward_used_kernels());
        const auto factors = ds_test::layer_dropout(c, s.batch, s.seq, 0, torch::kCUDA);
        const auto want = run(ref, ds_test::reference_params(ref), x, mask, dy, factors);
        for (const auto& [what, err] : errors(got, want)) {
          EXPECT_LT(err, 1e-4) << what << ", seq " << s.seq << " hidden " << s.hidden
                               << (pre_ln ? " pre-LN" : " post-LN") << " mask " << mask_kind;
        }
      }
    }
  }
}

// Half precision: the op against fp32 must be no worse than twice the torch::nn block run in
// the same dtype against fp32 (floor 2e-3), on weights rounded to that dtype.
TEST(TransformerKernels, Fp16AndBf16StayWithinTwiceTheErrorOfTorchInTheSameDtype) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(1);
  const Shape s{4, 128, 256, 4, 1024};
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    for (bool pre_ln : {true, false}) {
      const auto c = gpu_config_for(s, pre_ln, 0.1f);
      TransformerLayer layer(c);
      ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, pre_ln, c.layer_norm_eps);
      {
        torch::NoGradGuard no_grad;  // weights representable in the low precision
        for (auto& p : ref->parameters()) p.copy_(p.to(dtype).to(torch::kFloat));
      }
      ds_test::load_reference(layer, ref);
      ref->to(torch::kCUDA);
      ds_test::ReferenceLayer ref_low(s.hidden, s.heads, s.intermediate, pre_ln, c.layer_norm_eps);
      {
        torch::NoGradGuard no_grad;
        auto src = ref->parameters();
        auto dst = ref_low->parameters();
        for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i].cpu());
      }
      ref_low->to(torch::kCUDA, dtype);
      layer->to(torch::kCUDA, dtype);
      const auto cuda = torch::TensorOptions().device(torch::kCUDA);
      const auto x = torch::randn({s.batch, s.seq, s.hidden}, cuda).to(dtype).to(torch::kFloat);
      const auto dy = torch::randn({s.batch, s.seq, s.hidden}, cuda).to(dtype).to(torch::kFloat);
      const auto mask = make_mask(1, s.batch, s.seq, torch::kFloat);
      const auto factors = ds_test::layer_dropout(c, s.batch, s.seq, 0, torch::kCUDA);
      const auto want = run(ref, ds_test::reference_params(ref), x, mask, dy, factors);
      std::array<torch::Tensor, 3> low_factors;
      for (int i = 0; i < 3; ++i) low_factors[i] = factors[i].to(dtype);
      const auto torch_low =
          run(ref_low, ds_test::reference_params(ref_low), x.to(dtype), mask.to(dtype), dy.to(dtype), low_factors);
      const auto got = run(layer, ds_test::layer_params(layer), x.to(dtype), mask.to(dtype), dy.to(dtype));
      ASSERT_TRUE(layer->last_forward_used_kernels());
      const auto ours = errors(got, want), theirs = errors(torch_low, want);
      for (size_t i = 0; i < ours.size(); ++i) {
        const double bound = std::max(2.0 * theirs[i].second, 2e-3);
        EXPECT_LT(ours[i].second, bound) << c10::toString(dtype) << (pre_ln ? " pre-LN " : " post-LN ")
                                         << ours[i].first << ": torch::nn in the same dtype " << theirs[i].second;
        std::cout << c10::toString(dtype) << (pre_ln ? " pre-LN " : " post-LN ") << ours[i].first << ": op "
                  << ours[i].second << ", torch::nn " << theirs[i].second << "\n";
      }
    }
  }
}

TEST(TransformerKernels, BitwiseRepeatableForASeedAndStochasticModeClose) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(2);
  const Shape s{4, 64, 128, 4, 512};
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  const auto x = torch::randn({s.batch, s.seq, s.hidden}, cuda), dy = torch::randn({s.batch, s.seq, s.hidden}, cuda);
  for (bool pre_ln : {true, false}) {
    auto c = gpu_config_for(s, pre_ln, 0.1f);
    TransformerLayer a(c), b(c);
    ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, pre_ln, c.layer_norm_eps);
    ds_test::load_reference(a, ref);
    ds_test::load_reference(b, ref);
    a->to(torch::kCUDA);
    b->to(torch::kCUDA);
    const auto ra = run(a, ds_test::layer_params(a), x, {}, dy), rb = run(b, ds_test::layer_params(b), x, {}, dy);
    EXPECT_TRUE(torch::equal(ra.out, rb.out));
    EXPECT_TRUE(torch::equal(ra.dx, rb.dx));
    for (size_t i = 0; i < ra.grads.size(); ++i) {
      EXPECT_TRUE(torch::equal(ra.grads[i], rb.grads[i])) << ds_test::kParamNames[i];
    }
    if (!deepspeed::ops::stochastic_transformer_kernels_built()) continue;
    c.stochastic_mode = true;
    TransformerLayer st(c);
    ds_test::load_reference(st, ref);
    st->to(torch::kCUDA);
    const auto rs = run(st, ds_test::layer_params(st), x, {}, dy);
    for (const auto& [what, err] : errors(rs, ra)) EXPECT_LT(err, 1e-5) << "stochastic mode: " << what;
  }
}

int64_t allocated_bytes() {
#if DS_HAVE_CUDA
  // allocated_bytes[0]: the aggregate over pool kinds (StatType::AGGREGATE).
  return c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device()).allocated_bytes[0].current;
#else
  return 0;
#endif
}

TEST(TransformerKernels, EachMemoryOptionKeepsLessOnTheGpuAndTheSameGradients) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(3);
  const Shape s{8, 128, 256, 4, 1024};
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  const auto x = torch::randn({s.batch, s.seq, s.hidden}, cuda), dy = torch::randn({s.batch, s.seq, s.hidden}, cuda);
  for (bool pre_ln : {true, false}) {
    auto base = gpu_config_for(s, pre_ln, 0.1f);
    ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, pre_ln, base.layer_norm_eps);
    // Bytes held between forward and backward (the output included), measured by the allocator.
    auto kept = [&](const TransformerConfig& c, Result* result) {
      TransformerLayer layer(c);
      ds_test::load_reference(layer, ref);
      layer->to(torch::kCUDA);
      auto xi = x.detach().clone().requires_grad_(true);
      torch::cuda::synchronize();
      const int64_t before = allocated_bytes();
      auto out = layer(xi);
      torch::cuda::synchronize();
      const int64_t held = allocated_bytes() - before;
      out.backward(dy);
      *result = Result{out.detach(), xi.grad(), {}};
      for (auto& p : ds_test::layer_params(layer)) result->grads.push_back(p.grad());
      return held;
    };
    Result plain;
    const int64_t plain_bytes = kept(base, &plain);
    for (int option = 0; option < 3; ++option) {
      auto c = base;
      const char* name = option == 0 ? "normalize_invertible" : option == 1 ? "gelu_checkpoint" : "attn_dropout_checkpoint";
      (option == 0 ? c.normalize_invertible : option == 1 ? c.gelu_checkpoint : c.attn_dropout_checkpoint) = true;
      Result got;
      const int64_t bytes = kept(c, &got);
      std::cout << (pre_ln ? "pre-LN " : "post-LN ") << name << ": " << bytes << " bytes held, " << plain_bytes
                << " without\n";
      EXPECT_LT(bytes, plain_bytes) << name;
      for (const auto& [what, err] : errors(got, plain)) {
        EXPECT_LT(err, option == 0 ? 1e-4 : 1e-6) << name << (pre_ln ? " pre-LN: " : " post-LN: ") << what;
      }
    }
  }
}

}  // namespace
