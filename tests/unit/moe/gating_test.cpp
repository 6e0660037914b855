// The gates against cases computed by hand from DeepSpeed's formulas (sharded_moe.py): the
// capacity, which routes are dropped, where the kept ones sit, their combine weights, l_aux
// and exp_counts, for k = 1, 2 and 4; and the MoE layer on one rank.
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>
#include <deepspeed/moe.h>

namespace deepspeed::moe {
namespace {

void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, const char* what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(torch::allclose(actual.to(torch::kFloat64), expected.to(torch::kFloat64), 1e-6, 1e-7))
      << what << "\nactual\n" << actual << "\nexpected\n" << expected;
}

GatingOptions plain(double capacity_factor) {
  GatingOptions o;
  o.capacity_factor = capacity_factor;
  o.min_capacity = 0;
  o.use_rts = false;
  o.top2_2nd_expert_sampling = false;
  return o;
}

// 6 tokens, 2 experts: tokens 0-3 prefer expert 0 (gates 0.75, 0.25), 4-5 expert 1. Capacity
// ceil(6/2 * 1) = 3: expert 0 keeps tokens 0-2 and drops 3.
TEST(Top1Gating, CapacityDropsTheLaterTokensAndWeightsByTheGate) {
  const double a = std::log(3.0);
  const auto logits = torch::tensor({a, a, a, a, -a, -a}).reshape({6, 1}) * torch::tensor({1.0, 0.0}).reshape({1, 2});
  const auto d = top1gating(logits.to(torch::kFloat32), plain(1.0));
  EXPECT_EQ(d.capacity, 3);
  EXPECT_TRUE(torch::equal(d.exp_counts, torch::tensor({4, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(d.indices, torch::tensor({{0, 0, 0, -1, 1, 1}}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(d.locations, torch::tensor({{0, 1, 2, 0, 0, 1}}, torch::kInt64)));
  expect_close(d.gates, torch::tensor({{0.75, 0.75, 0.75, 0.0, 0.75, 0.75}}), "gates");
  // me = (3.5/6, 2.5/6), ce = (4/6, 2/6): l_aux = 2 * (14 + 5) / 36.
  expect_close(d.l_aux, torch::tensor(19.0 / 18.0), "l_aux");
  auto expected = torch::zeros({6, 2, 3});
  for (int t = 0; t < 3; ++t) expected[t][0][t] = 0.75;
  expected[4][1][0] = 0.75;
  expected[5][1][1] = 0.75;
  expect_close(combine_weights(d), expected, "combine weights");

  // Without dropping, the capacity is the fullest expert's count and every token stays.
  auto keep_all = plain(1.0);
  keep_all.drop_tokens = false;
  const auto all = top1gating(logits.to(torch::kFloat32), keep_all);
  EXPECT_EQ(all.capacity, 4);
  EXPECT_TRUE(torch::equal(all.indices, torch::tensor({{0, 0, 0, 0, 1, 1}}, torch::kInt64)));
}

TEST(Top1Gating, RandomTokenSelectionKeepsCapacityTokensPerExpert) {
  torch::manual_seed(0);
  auto o = plain(0.5);
  o.use_rts = true;
  const auto d = top1gating(torch::randn({32, 4}), o);
  EXPECT_EQ(d.capacity, 4);  // ceil(32/4 * 0.5)
  for (int64_t e = 0; e < 4; ++e) {
    const auto kept = (d.indices[0] == e).sum().item<int64_t>();
    EXPECT_EQ(kept, std::min<int64_t>(4, d.exp_counts[e].item<int64_t>())) << "expert " << e;
    // Kept routes take the slots 0..kept-1, each once.
    const auto slots = std::get<0>(d.locations[0].masked_select(d.indices[0] == e).sort());
    EXPECT_TRUE(torch::equal(slots, torch::arange(kept))) << "expert " << e;
  }
}

TEST(Top1Gating, FewerTokensThanMinCapacityIsAnError) {
  GatingOptions o = plain(1.0);
  o.min_capacity = 8;
  EXPECT_THROW(top1gating(torch::zeros({4, 2}), o), EngineError);
}

// 4 tokens, 3 experts; tokens 0-2 have logits (2, 1, 0), token 3 (2, 0, 1). Capacity
// ceil(4/3 * 1 * 2) = 3. Expert 0 is every token's first choice: token 3's first route is its
// fourth and is dropped; second routes queue behind the first ones (none on experts 1, 2).
TEST(Top2Gating, SecondRoutesQueueBehindFirstRoutesAndGatesRenormalize) {
  const auto logits = torch::tensor({{2.0f, 1.0f, 0.0f}, {2.0f, 1.0f, 0.0f}, {2.0f, 1.0f, 0.0f}, {2.0f, 0.0f, 1.0f}});
  const auto d = top2gating(logits, plain(1.0));
  EXPECT_EQ(d.capacity, 3);
  EXPECT_TRUE(torch::equal(d.exp_counts, torch::tensor({4, 3, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(d.indices, torch::tensor({{0, 0, 0, -1}, {1, 1, 1, 2}}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(d.locations, torch::tensor({{0, 1, 2, 0}, {0, 1, 2, 0}}, torch::kInt64)));
  const double e = std::exp(1.0);
  const double first = e / (e + 1), second = 1 / (e + 1);
  expect_close(d.gates, torch::tensor({{first, first, first, 0.0}, {second, second, second, 1.0}}), "gates");
  // ce = (1, 0, 0): l_aux = mean(me * ce) * 9 = 3 * me_0 = 3 e^2 / Z.
  const double z = e * e + e + 1;
  expect_close(d.l_aux, torch::tensor(3 * e * e / z), "l_aux");
}

// 4 tokens, 4 experts, k 4 (every expert chosen by every token), capacity ceil(4/4 * 0.5 * 4)
// = 2: each expert keeps its two highest gates. Logits are a rotation of (3, 2, 1, 0), so each
// token keeps its two best experts, with gates e/(e+1) and 1/(e+1).
TEST(TopKGating, ProbsPolicyKeepsTheHighestGatesPerExpert) {
  const auto logits = torch::tensor(
      {{3.0f, 2.0f, 1.0f, 0.0f}, {0.0f, 3.0f, 2.0f, 1.0f}, {1.0f, 0.0f, 3.0f, 2.0f}, {2.0f, 1.0f, 0.0f, 3.0f}});
  const auto d = topkgating(logits, 4, plain(0.5));
  EXPECT_EQ(d.capacity, 2);
  EXPECT_TRUE(torch::equal(d.exp_counts, torch::tensor({4, 4, 4, 4}, torch::kInt64)));
  expect_close(d.l_aux, torch::tensor(1.0), "l_aux");
  const double e = std::exp(1.0);
  const double best = e / (e + 1), next = 1 / (e + 1);
  auto expected = torch::zeros({4, 4, 2});
  // token: (its best expert, slot), (its second, slot)
  expected[0][0][0] = best;
  expected[0][1][0] = next;
  expected[1][1][1] = best;
  expected[1][2][0] = next;
  expected[2][2][1] = best;
  expected[2][3][0] = next;
  expected[3][3][1] = best;
  expected[3][0][1] = next;
  expect_close(combine_weights(d), expected, "combine weights");
  EXPECT_TRUE(torch::equal(d.indices.select(1, 0), torch::tensor({0, 1, -1, -1}, torch::kInt64)));

  auto position = plain(0.5);
  position.drop_policy = "position";
  const auto p = topkgating(logits, 4, position);
  // The first two tokens of each expert, whatever their gates.
  for (int64_t t = 0; t < 4; ++t) {
    EXPECT_EQ((p.indices.select(1, t) >= 0).sum().item<int64_t>(), t < 2 ? 4 : 0) << "token " << t;
  }
  auto bad = plain(0.5);
  bad.drop_policy = "random";
  EXPECT_THROW(topkgating(logits, 4, bad), EngineError);
  EXPECT_THROW(topkgating(logits, 5, plain(1.0)), EngineError);
}

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 8));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::relu(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

// The layer on one rank against its definition: each token's output is the sum over its kept
// routes of gate x expert(token); DeepSpeed's parameter names; the optimizer groups split.
TEST(MoELayer, OutputIsTheGateWeightedSumOfTheChosenExperts) {
  torch::manual_seed(3);
  MoEOptions o;
  o.num_experts = 4;
  o.k = 2;
  o.min_capacity = 0;
  o.use_rts = false;
  o.top2_2nd_expert_sampling = false;
  o.capacity_factor = 0.75;  // capacity ceil(12/4 * 0.75 * 2) = 5: some routes are dropped
  MoE moe(8, [] { return torch::nn::AnyModule(std::make_shared<Mlp>()); }, o);
  const auto x = torch::randn({3, 4, 8});
  auto [out, l_aux, counts] = moe->forward(x);
  ASSERT_EQ(out.sizes(), x.sizes());
  const auto tokens = x.reshape({12, 8});
  const auto logits = torch::nn::functional::linear(tokens, moe->named_parameters()["deepspeed_moe.gate.wg.weight"]);
  const auto d = top2gating(logits, [&] {
    auto g = plain(0.75);
    return g;
  }());
  EXPECT_GT((d.indices < 0).sum().item<int64_t>(), 0) << "the case should drop some routes";
  auto expected = torch::zeros({12, 8});
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t t = 0; t < 12; ++t) {
      const auto e = d.indices[r][t].item<int64_t>();
      if (e < 0) continue;
      auto mlp = std::dynamic_pointer_cast<Mlp>(moe->named_children()["deepspeed_moe"]
                                                    ->named_children()["experts"]
                                                    ->named_children()["deepspeed_experts"]
                                                    ->children()[static_cast<size_t>(e)]);
      expected[t] += d.gates[r][t] * mlp->forward(tokens[t].unsqueeze(0))[0];
    }
  }
  expect_close(out.reshape({12, 8}), expected, "MoE output");
  expect_close(l_aux, d.l_aux, "l_aux");

  const auto names = moe->named_parameters().keys();
  EXPECT_NE(std::find(names.begin(), names.end(), "deepspeed_moe.experts.deepspeed_experts.3.fc2.bias"), names.end());
  EXPECT_TRUE(is_moe_param_name("deepspeed_moe.experts.deepspeed_experts.3.fc2.bias"));
  EXPECT_FALSE(is_moe_param_name("deepspeed_moe.gate.wg.weight"));
  ParamGroup all;
  all.params = moe->parameters();
  all.lr = 0.5;
  const auto groups = split_params_into_different_moe_groups_for_optimizer({all}, *moe);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].params.size(), 1u) << "the gate";
  EXPECT_EQ(groups[1].params.size(), 16u) << "4 experts x 4 tensors";
  EXPECT_EQ(groups[1].lr, 0.5);
  EXPECT_EQ(groups[1].extra.at("moe"), 1.0);
}

TEST(MoELayer, ExpertParallelismWithoutItsGroupIsAnError) {
  MoEOptions o;
  o.num_experts = 4;
  o.ep_size = 2;
  MoE moe(8, [] { return torch::nn::AnyModule(std::make_shared<Mlp>()); }, o);
  EXPECT_EQ(moe->num_local_experts(), 2);
  EXPECT_THROW(moe->forward(torch::randn({8, 8})), EngineError);
  o.ep_size = 3;
  EXPECT_THROW(MoE(8, [] { return torch::nn::AnyModule(std::make_shared<Mlp>()); }, o), EngineError);
}

}  // namespace
}  // namespace deepspeed::moe
