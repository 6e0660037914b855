// How a split parameter is cut into parts and put back together (tensor_parallel::shard and
// unshard), the rule a checkpoint uses to load on another tensor-parallel degree: column and
// row splits, a fused [q; k; v] weight whose sub-parameters are split each on its own, and
// parts that do not fit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>
#include <deepspeed/tensor_parallel.h>

// A named namespace: this binary's test files are compiled together (unity build).
namespace split_parameter_test {

namespace tp = deepspeed::tensor_parallel;

std::vector<torch::Tensor> parts_of(const torch::Tensor& whole, const tp::SplitParameter& split, int64_t n) {
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < n; ++r) parts.push_back(tp::shard(whole, split, n, r));
  return parts;
}

TEST(SplitParameter, RowsAndColumnsComeBackInRankOrder) {
  const auto whole = torch::arange(24, torch::kFloat32).view({4, 6});
  const tp::SplitParameter column{"c.weight", 0, {}}, row{"r.weight", 1, {}};
  EXPECT_TRUE(torch::equal(tp::shard(whole, column, 2, 1), whole.narrow(0, 2, 2)));
  EXPECT_TRUE(torch::equal(tp::shard(whole, row, 3, 2), whole.narrow(1, 4, 2)));
  for (int64_t n : {1, 2}) EXPECT_TRUE(torch::equal(tp::unshard(parts_of(whole, column, n), column), whole));
  for (int64_t n : {1, 2, 3, 6}) EXPECT_TRUE(torch::equal(tp::unshard(parts_of(whole, row, n), row), whole));
}

TEST(SplitParameter, FusedSubParametersAreSplitEachOnItsOwn) {
  // c_attn: [q; k; v] of 4 rows each; rank r of 2 holds [q_r; k_r; v_r].
  const auto whole = torch::arange(12, torch::kFloat32).view({12, 1});
  const tp::SplitParameter c_attn{"c_attn.weight", 0, {4, 4, 4}};
  const auto rank1 = tp::shard(whole, c_attn, 2, 1);
  EXPECT_TRUE(torch::equal(rank1.view(-1), torch::tensor({2.f, 3.f, 6.f, 7.f, 10.f, 11.f})));
  // Two parts put together and cut in four: what four ranks would have drawn from the whole.
  const auto from_two = tp::unshard(parts_of(whole, c_attn, 2), c_attn);
  EXPECT_TRUE(torch::equal(from_two, whole));
  for (int64_t r = 0; r < 4; ++r) {
    EXPECT_TRUE(torch::equal(tp::shard(from_two, c_attn, 4, r), tp::shard(whole, c_attn, 4, r)));
  }
  EXPECT_TRUE(torch::equal(tp::shard(whole, c_attn, 4, 3).view(-1), torch::tensor({3.f, 7.f, 11.f})));
}

TEST(SplitParameter, PartsThatDoNotFitAreErrorsNamingTheParameter) {
  const tp::SplitParameter up{"mlp.up_proj.weight", 0, {}};
  try {
    tp::unshard({torch::zeros({2, 3}), torch::zeros({2, 4})}, up);
    FAIL() << "no error";
  } catch (const deepspeed::EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("mlp.up_proj.weight: its parts do not fit together along dimension 0"),
              std::string::npos)
        << e.what();
  }
  try {
    tp::shard(torch::zeros({6, 2}), up, 4, 0);
    FAIL() << "no error";
  } catch (const deepspeed::EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("mlp.up_proj.weight: dimension 0 of size 6 is not divisible by the "
                                         "tensor-parallel size 4"),
              std::string::npos)
        << e.what();
  }
  const tp::SplitParameter qkv{"c_attn.weight", 0, {4, 4, 4}};
  EXPECT_THROW(tp::shard(torch::zeros({10, 2}), qkv, 2, 0), deepspeed::EngineError);
  EXPECT_THROW(tp::unshard({torch::zeros({3, 2}), torch::zeros({3, 2})}, qkv), deepspeed::EngineError);
}

}  // namespace split_parameter_test
