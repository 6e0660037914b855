// The sparse attention op's CPU path (fp32) against dense attention with the layout's mask
// (fp64), forward and backward, for every sparsity configuration, with rpe, key padding and
// attention masks in both modes; its errors; and SparseAttentionUtils.
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>
#include <deepspeed/sparse_attention.h>

#include "sparse_attention_reference.h"

namespace {

using namespace deepspeed::ops::sparse_attention;
using deepspeed::testing::dense_reference;

constexpr int64_t kBatch = 2, kHeads = 2, kSeq = 128, kDim = 16;
const SparsityOptions kBase{.num_heads = kHeads, .block = 16, .different_layout_per_head = true};

// One of each configuration, each with something that makes its layout its own.
std::vector<std::shared_ptr<const SparsityConfig>> every_config(const std::string& attention) {
  FixedOptions fixed;
  static_cast<SparsityOptions&>(fixed) = kBase;
  fixed.num_local_blocks = 3;
  fixed.attention = attention;
  fixed.num_different_global_patterns = 2;
  VariableOptions variable;
  static_cast<SparsityOptions&>(variable) = kBase;
  variable.num_random_blocks = 1;
  variable.local_window_blocks = {1, 2};
  variable.global_block_indices = {3};
  variable.attention = attention;
  variable.seed = 11;
  BigBirdOptions bigbird;
  static_cast<SparsityOptions&>(bigbird) = kBase;
  bigbird.attention = attention;
  bigbird.seed = 5;
  BSLongformerOptions longformer;
  static_cast<SparsityOptions&>(longformer) = kBase;
  longformer.global_block_indices = {0, 5};
  longformer.global_block_end_indices = std::vector<int64_t>{1, 7};
  longformer.attention = attention;
  LocalSlidingWindowOptions local;
  static_cast<SparsityOptions&>(local) = kBase;
  local.attention = attention;
  return {std::make_shared<DenseSparsityConfig>(kBase), std::make_shared<FixedSparsityConfig>(fixed),
          std::make_shared<VariableSparsityConfig>(variable), std::make_shared<BigBirdSparsityConfig>(bigbird),
          std::make_shared<BSLongformerSparsityConfig>(longformer),
          std::make_shared<LocalSlidingWindowSparsityConfig>(local)};
}

struct Inputs {
  torch::Tensor q, k, v, grad;
};

Inputs random_inputs(int64_t seed) {
  torch::manual_seed(seed);
  auto t = [] { return torch::randn({kBatch, kHeads, kSeq, kDim}); };
  return {t(), t(), t(), t()};
}

// Output and q, k, v gradients of `forward`, fed leaves of the given dtype.
std::vector<torch::Tensor> run(const Inputs& in, torch::Dtype dtype,
                               const std::function<torch::Tensor(torch::Tensor, torch::Tensor, torch::Tensor)>& forward) {
  auto leaf = [&](const torch::Tensor& t) { return t.to(dtype).detach().clone().requires_grad_(); };
  auto q = leaf(in.q), k = leaf(in.k), v = leaf(in.v);
  auto out = forward(q, k, v);
  (out * in.grad.to(dtype)).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

void expect_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want, const std::string& what) {
  const char* names[] = {"output", "dq", "dk", "dv"};
  for (size_t i = 0; i < got.size(); ++i) {
    const auto diff = (got[i].to(torch::kDouble) - want[i]).abs().max().item<double>();
    const auto scale = want[i].abs().max().item<double>();
    EXPECT_LE(diff, 2e-5 * std::max(1.0, scale)) << what << ": " << names[i] << " differs by " << diff;
  }
}

// Additive masks as the reference takes them, from the op's mask of the given mode.
torch::Tensor additive(const torch::Tensor& m, const std::string& mode) {
  if (mode == "add") return m.to(torch::kDouble);
  return torch::where(m == 0, torch::full({}, -std::numeric_limits<double>::infinity(), torch::kDouble),
                      torch::zeros({}, torch::kDouble));
}

void check_every_config(const std::string& attention, bool causal) {
  const Inputs in = random_inputs(1);
  // Key padding drops the last 9 keys of the second sequence; the attention mask drops a
  // diagonal band; rpe adds a per-head bias.
  auto key_padding = torch::ones({kBatch, 1, 1, kSeq});
  key_padding.index_put_({1, 0, 0, torch::indexing::Slice(kSeq - 9, kSeq)}, 0);
  const auto attn_mask = (torch::arange(kSeq).unsqueeze(1) - torch::arange(kSeq).unsqueeze(0)).abs().ne(3).to(torch::kFloat);
  torch::manual_seed(2);
  const auto rpe = torch::randn({1, kHeads, kSeq, kSeq}) * 0.5;
  for (const auto& config : every_config(attention)) {
    SparseSelfAttention op(config, SparseSelfAttentionOptions{.key_padding_mask_mode = "mul", .attn_mask_mode = "mul",
                                                               .max_seq_length = 256, .causal = causal});
    const SparsityLayout layout = op->get_layout(kSeq);
    const auto got = run(in, torch::kFloat, [&](torch::Tensor q, torch::Tensor k, torch::Tensor v) {
      return op->forward(q, k, v, rpe, key_padding, attn_mask);
    });
    const auto want = run(in, torch::kDouble, [&](torch::Tensor q, torch::Tensor k, torch::Tensor v) {
      return dense_reference(q, k, v, layout, 16, rpe, additive(key_padding.reshape({kBatch, kSeq}), "mul"),
                             additive(attn_mask, "mul"), causal);
    });
    expect_close(got, want, config->mode() + " " + attention + (causal ? " causal" : ""));
  }
}

TEST(SparseSelfAttention, MatchesDenseMaskedAttentionForEveryConfigBidirectional) {
  check_every_config("bidirectional", false);
}

TEST(SparseSelfAttention, MatchesDenseMaskedAttentionForEveryConfigUnidirectionalCausal) {
  check_every_config("unidirectional", true);
}

TEST(SparseSelfAttention, AdditiveMasksAndTransposedKey) {
  const Inputs in = random_inputs(3);
  auto config = every_config("bidirectional")[3];  // bigbird
  SparseSelfAttention op(config, SparseSelfAttentionOptions{.key_padding_mask_mode = "add", .attn_mask_mode = "add"});
  torch::manual_seed(4);
  const auto key_padding = torch::randn({kBatch, kSeq});
  const auto attn_mask = torch::randn({kSeq, kSeq});
  const auto got = run(in, torch::kFloat, [&](torch::Tensor q, torch::Tensor k, torch::Tensor v) {
    return op->forward(q, k.transpose(2, 3), v, {}, key_padding, attn_mask);  // key as [b, h, d, seq]
  });
  const auto want = run(in, torch::kDouble, [&](torch::Tensor q, torch::Tensor k, torch::Tensor v) {
    return dense_reference(q, k, v, op->get_layout(kSeq), 16, {}, key_padding, attn_mask);
  });
  expect_close(got, want, "additive masks");
}

TEST(SparseSelfAttention, FullyMaskedRowsGiveZerosNotNaN) {
  const Inputs in = random_inputs(5);
  SparseSelfAttention op(every_config("bidirectional")[5]);  // local sliding window
  auto key_padding = torch::ones({kBatch, kSeq});
  key_padding[0] = 0;  // the first sequence has no key left
  const auto got = run(in, torch::kFloat, [&](torch::Tensor q, torch::Tensor k, torch::Tensor v) {
    return op->forward(q, k, v, {}, key_padding.log());  // "add": log(0) = -inf
  });
  for (const auto& t : got) EXPECT_FALSE(torch::isnan(t).any().item<bool>());
  EXPECT_EQ(got[0][0].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(got[1][0].abs().max().item<float>(), 0.0f);
  EXPECT_GT(got[0][1].abs().max().item<float>(), 0.0f);
}

TEST(SparseSelfAttention, ShorterSequencesUseTheMasterLayoutsCorner) {
  auto config = every_config("bidirectional")[2];  // variable, with random blocks
  SparseSelfAttention op(config, SparseSelfAttentionOptions{.max_seq_length = 512});
  EXPECT_EQ(op->master_layout.sizes(), (std::vector<int64_t>{kHeads, 32, 32}));
  EXPECT_EQ(op->get_layout(kSeq), config->make_layout(512).leading(kSeq / 16));
  EXPECT_EQ(op->named_buffers().size(), 1u);
}

void expect_op_error(const std::function<void()>& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "no error; expected: " << message;
  } catch (const deepspeed::OpError& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

TEST(SparseSelfAttention, BadInputsAreClearErrors) {
  auto config = every_config("bidirectional")[1];
  SparseSelfAttention op(config);
  const auto x = torch::randn({1, kHeads, kSeq, kDim});
  expect_op_error([&] { op->forward(torch::randn({1, kHeads, 100, kDim}), torch::randn({1, kHeads, 100, kDim}),
                           torch::randn({1, kHeads, 100, kDim})); },
                  "Sequence Length, 100, needs to be dividable by Block size 16!");
  expect_op_error([&] { op->forward(x, x, torch::randn({1, kHeads, kSeq, 8})); }, "only self-attention is supported for now");
  expect_op_error([&] { op->forward(torch::randn({1, 3, kSeq, kDim}), torch::randn({1, 3, kSeq, kDim}),
                           torch::randn({1, 3, kSeq, kDim})); },
                  "query has 3 heads, the sparsity config 2");
  expect_op_error([&] { op->forward(x.to(torch::kHalf), x.to(torch::kHalf), x.to(torch::kHalf)); },
                  "on the CPU the op computes in fp32");
  expect_op_error([&] { op->forward(x, x, x, {}, torch::ones({2, kSeq})); }, "key_padding_mask must hold [batch, seq]");
  expect_op_error([&] { op->forward(x, x, x, {}, {}, torch::ones({kSeq})); }, "attn_mask must be [seq, seq]");
  expect_op_error([&] { op->forward(x, x, x, torch::ones({3, kSeq, kSeq})); }, "rpe must broadcast");
  expect_op_error([&] { SparseSelfAttention(config, SparseSelfAttentionOptions{.key_padding_mask_mode = "multiply"}); },
                  "key_padding_mask_mode must be \"add\" or \"mul\"");
  expect_op_error([&] { SparseSelfAttention(config, SparseSelfAttentionOptions{.max_seq_length = 4096})->get_layout(8192); },
                  "longer than max_seq_length 4096");
}

TEST(SparseAttentionUtils, PadsToTheBlockAndUnpads) {
  const auto ids = torch::arange(2 * 10).reshape({2, 10});
  const auto mask = torch::ones({2, 10}, torch::kLong);
  torch::nn::Embedding embed(100, 4);
  const auto embeds = embed(ids);
  const auto p = SparseAttentionUtils::pad_to_block_size(16, ids, mask, torch::zeros_like(ids), ids, embeds, 7,
                                                         [&](const torch::Tensor& t) { return embed(t); });
  EXPECT_EQ(p.pad_len, 6);
  EXPECT_EQ(p.input_ids.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(p.input_ids[1][15].item<int64_t>(), 7);
  EXPECT_EQ(p.position_ids[0][12].item<int64_t>(), 7);
  EXPECT_EQ(p.attention_mask.sum().item<int64_t>(), 20);
  EXPECT_EQ(p.token_type_ids.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(p.inputs_embeds.sizes(), (std::vector<int64_t>{2, 16, 4}));
  EXPECT_TRUE(torch::equal(p.inputs_embeds[0][15], embed(torch::full({1}, 7, torch::kLong))[0]));
  EXPECT_TRUE(torch::equal(SparseAttentionUtils::unpad_sequence_output(p.pad_len, p.inputs_embeds), embeds));
  const auto none = SparseAttentionUtils::pad_to_block_size(5, ids, {}, {}, {}, {}, 0);
  EXPECT_EQ(none.pad_len, 0);
  EXPECT_FALSE(none.attention_mask.defined());
}

// A model whose attention modules can be switched to sparse attention.
class ToyAttention : public torch::nn::Module, public ReplaceableSelfAttention {
 public:
  explicit ToyAttention(int64_t heads) : heads_(heads) {}
  int64_t num_attention_heads() const override { return heads_; }
  void use_sparse_self_attention(std::shared_ptr<const SparsityConfig> config, int64_t max_position) override {
    sparse = register_module("sparse", SparseSelfAttention(std::move(config), SparseSelfAttentionOptions{.max_seq_length = max_position}));
  }
  SparseSelfAttention sparse{nullptr};

 private:
  int64_t heads_;
};

TEST(SparseAttentionUtils, ReplacesEveryReplaceableSelfAttention) {
  torch::nn::ModuleList model(std::make_shared<ToyAttention>(kHeads), torch::nn::Linear(2, 2),
                              std::make_shared<ToyAttention>(kHeads));
  auto config = every_config("bidirectional")[1];
  EXPECT_EQ(SparseAttentionUtils::replace_model_self_attention_with_sparse_self_attention(*model, 1024, config), 2);
  EXPECT_FALSE(model[0]->as<ToyAttention>()->sparse.is_empty());
  EXPECT_EQ(model[2]->as<ToyAttention>()->sparse->options().max_seq_length, 1024);
  torch::nn::ModuleList other(std::make_shared<ToyAttention>(4));
  expect_op_error([&] {
    SparseAttentionUtils::replace_model_self_attention_with_sparse_self_attention(*other, 1024, config);
  }, "has 4 attention heads, the sparsity config 2");
}

}  // namespace
