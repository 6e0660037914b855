// The sparse attention op's CUDA kernels (fp16, bf16) against dense attention with the layout's
// mask computed in fp32 on the same GPU, forward and backward, for every sparsity configuration,
// head_dim 32/64/128 and blocks 16 to 128, with rpe, key padding and attention masks and with
// causal attention. Bound: the kernels' error (max |difference| / max |reference|) is at most
// twice that of the same dense computation run in the low precision, plus 2^-10 (fp16) or
// 2^-7 (bf16): one unit in the last place of the stored inputs. Also: the gradients are the same
// bits every run, and memory follows the kept blocks.
#include <cstdio>

#include <gtest/gtest.h>

#if DS_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <deepspeed/sparse_attention.h>

#include "sparse_attention_reference.h"

namespace {

using namespace deepspeed::ops::sparse_attention;
using deepspeed::testing::dense_reference;

#define SKIP_WITHOUT_KERNELS()                                                                    \
  do {                                                                                            \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU";                              \
    if (!sparse_attention_kernels_built()) GTEST_SKIP() << "the sparse_attn op is not built";     \
  } while (0)

std::shared_ptr<const SparsityConfig> config_of(const std::string& mode, int64_t heads, int64_t block,
                                                const std::string& attention) {
  deepspeed::SparseAttentionConfig s;
  s.mode = mode;
  s.block = block;
  s.different_layout_per_head = mode != "local_sliding_window";
  s.attention = attention;
  if (mode == "bigbird") s.num_random_blocks = 1;
  if (mode == "variable") {
    s.num_random_blocks = 1;
    s.local_window_blocks = {1, 2};
    s.global_block_indices = {1};
  }
  if (mode == "fixed") s.num_local_blocks = 2;
  s.seed = 3;
  return make_sparsity_config(s, heads);
}

struct Outputs {
  torch::Tensor out, dq, dk, dv;
};

Outputs run(const std::function<torch::Tensor(torch::Tensor, torch::Tensor, torch::Tensor)>& f, const torch::Tensor& q,
            const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g, torch::Dtype dtype) {
  auto leaf = [&](const torch::Tensor& t) { return t.to(dtype).detach().clone().requires_grad_(); };
  auto ql = leaf(q), kl = leaf(k), vl = leaf(v);
  auto out = f(ql, kl, vl);
  out.backward(g.to(dtype));
  return {out.detach().to(torch::kFloat), ql.grad().to(torch::kFloat), kl.grad().to(torch::kFloat),
          vl.grad().to(torch::kFloat)};
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / std::max(want.abs().max().item<double>(), 1e-6);
}

struct Case {
  std::string mode, attention;
  int64_t block, head_dim, seq;
  bool causal, masks;
};

void check(const Case& c, torch::Dtype dtype) {
  const int64_t batch = 2, heads = 4;
  const auto config = config_of(c.mode, heads, c.block, c.attention);
  SparseSelfAttention op(config, SparseSelfAttentionOptions{.key_padding_mask_mode = "mul", .attn_mask_mode = "add",
                                                            .max_seq_length = c.seq, .causal = c.causal});
  op->to(torch::kCUDA);
  torch::manual_seed(7);
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  auto t = [&] { return torch::randn({batch, heads, c.seq, c.head_dim}, cuda); };
  const auto q = t(), k = t(), v = t(), g = t();
  torch::Tensor rpe, key_padding, attn_mask, key_padding_add;
  if (c.masks) {
    rpe = torch::randn({1, heads, c.seq, c.seq}, cuda) * 0.3;
    key_padding = torch::ones({batch, c.seq}, cuda);
    key_padding[1].narrow(0, c.seq - 5, 5).fill_(0);
    key_padding_add = torch::where(key_padding == 0, torch::full({}, -INFINITY, cuda), torch::zeros({}, cuda));
    attn_mask = torch::randn({c.seq, c.seq}, cuda) * 0.3;
  }
  const SparsityLayout layout = op->get_layout(c.seq);
  auto reference = [&](torch::Tensor ql, torch::Tensor kl, torch::Tensor vl) {
    return dense_reference(ql, kl, vl, layout, c.block, rpe, key_padding_add, attn_mask, c.causal);
  };
  const Outputs want = run(reference, q, k, v, g, torch::kFloat);
  const Outputs dense_low = run(reference, q, k, v, g, dtype);
  const Outputs got = run([&](torch::Tensor ql, torch::Tensor kl, torch::Tensor vl) {
    return op->forward(ql, kl, vl, rpe.defined() ? rpe.to(dtype) : rpe, key_padding, attn_mask);
  }, q, k, v, g, dtype);
  const double floor = dtype == torch::kHalf ? 1.0 / 1024 : 1.0 / 128;
  const std::string what = c.mode + " " + c.attention + (c.causal ? " causal" : "") + " block " +
                           std::to_string(c.block) + " head_dim " + std::to_string(c.head_dim) +
                           (dtype == torch::kHalf ? " fp16" : " bf16");
  const torch::Tensor Outputs::*fields[] = {&Outputs::out, &Outputs::dq, &Outputs::dk, &Outputs::dv};
  const char* names[] = {"out", "dq", "dk", "dv"};
  std::string errors;
  for (int i = 0; i < 4; ++i) {
    const double ours = relative_error(got.*fields[i], want.*fields[i]);
    const double dense = relative_error(dense_low.*fields[i], want.*fields[i]);
    errors += std::string(" ") + names[i] + " " + std::to_string(ours) + " (dense " + std::to_string(dense) + ")";
    EXPECT_LE(ours, 2 * dense + floor) << what << ": " << names[i] << " error " << ours << ", dense in the same dtype "
                                       << dense;
  }
  // The errors measured, for docs/sparse_attention.md.
  std::printf("%s:%s\n", what.c_str(), errors.c_str());
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"dense", "bidirectional", 64, 64, 256, false, true},
      {"fixed", "bidirectional", 16, 64, 256, false, true},
      {"fixed", "unidirectional", 32, 64, 256, true, false},
      {"variable", "bidirectional", 32, 32, 256, false, true},
      {"bigbird", "bidirectional", 64, 64, 512, false, true},
      {"bigbird", "unidirectional", 16, 128, 256, true, true},
      {"bslongformer", "bidirectional", 128, 64, 512, false, true},
      {"bslongformer", "unidirectional", 64, 128, 512, true, false},
      {"local_sliding_window", "unidirectional", 32, 64, 256, true, true},
  };
  return c;
}

TEST(SparseAttentionGpu, Fp16MatchesDenseMaskedAttention) {
  SKIP_WITHOUT_KERNELS();
  for (const Case& c : cases()) check(c, torch::kHalf);
}

TEST(SparseAttentionGpu, Bf16MatchesDenseMaskedAttention) {
  SKIP_WITHOUT_KERNELS();
  for (const Case& c : cases()) check(c, torch::kBFloat16);
}

TEST(SparseAttentionGpu, GradientsAreTheSameBitsEveryRun) {
  SKIP_WITHOUT_KERNELS();
  SparseSelfAttention op(config_of("bigbird", 4, 64, "bidirectional"), SparseSelfAttentionOptions{.max_seq_length = 1024});
  const auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  torch::manual_seed(1);
  const auto q = torch::randn({1, 4, 1024, 64}, opts), g = torch::randn({1, 4, 1024, 64}, opts);
  auto once = [&] {
    auto x = q.clone().requires_grad_();
    op->forward(x, x, x).backward(g);
    return x.grad();
  };
  EXPECT_TRUE(torch::equal(once(), once()));
}

TEST(SparseAttentionGpu, MemoryFollowsTheKeptBlocks) {
  SKIP_WITHOUT_KERNELS();
  // 16 heads of 64 at seq 8192, a local window of 2 blocks of 64: the dense scores alone would
  // be 16 * 8192^2 * 2 bytes = 2 GiB; forward + backward here needs a few times q's 16 MiB.
  const int64_t heads = 16, seq = 8192, dim = 64;
  deepspeed::SparseAttentionConfig s;
  s.mode = "local_sliding_window";
  s.block = 64;
  s.num_sliding_window_blocks = 3;
  SparseSelfAttention op(make_sparsity_config(s, heads), SparseSelfAttentionOptions{.max_seq_length = seq});
  const auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  auto q = torch::randn({1, heads, seq, dim}, opts).requires_grad_();
  auto k = torch::randn({1, heads, seq, dim}, opts).requires_grad_();
  auto v = torch::randn({1, heads, seq, dim}, opts).requires_grad_();
  const auto g = torch::randn({1, heads, seq, dim}, opts);
#if DS_HAVE_CUDA
  torch::cuda::synchronize();
  namespace alloc = c10::cuda::CUDACachingAllocator;
  const auto device = c10::cuda::current_device();
  alloc::resetPeakStats(device);
  const int64_t before = alloc::getDeviceStats(device).allocated_bytes[0].current;
  op->forward(q, k, v).backward(g);
  torch::cuda::synchronize();
  const int64_t peak = alloc::getDeviceStats(device).allocated_bytes[0].peak - before;
  const int64_t q_bytes = q.numel() * 2;
  EXPECT_LT(peak, 12 * q_bytes) << "forward + backward held " << peak << " bytes beyond the inputs";
#endif
}

}  // namespace
