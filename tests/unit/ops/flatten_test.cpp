// The utils op (deepspeed/flatten.h): flatten and unflatten of tensor lists.
#include <gtest/gtest.h>

#include <deepspeed/errors.h>
#include <deepspeed/flatten.h>

#include <torch/torch.h>

namespace {

TEST(UtilsOp, FlattenPutsTheTensorsBackToBackAndUnflattenGivesViews) {
  if (!deepspeed::ops::utils_op_built()) GTEST_SKIP() << "this build has no utils op (DS_BUILD_UTILS=OFF)";
  const std::vector<torch::Tensor> ts = {torch::randn({3, 4}), torch::randn({5}), torch::randn({2, 2, 2}),
                                         torch::randn({0})};
  const auto flat = deepspeed::ops::flatten(ts);
  ASSERT_EQ(flat.dim(), 1);
  ASSERT_EQ(flat.numel(), 12 + 5 + 8);
  EXPECT_TRUE(torch::equal(flat.narrow(0, 0, 12), ts[0].reshape({-1})));
  EXPECT_TRUE(torch::equal(flat.narrow(0, 12, 5), ts[1]));
  EXPECT_TRUE(torch::equal(flat.narrow(0, 17, 8), ts[2].reshape({-1})));
  const auto views = deepspeed::ops::unflatten(flat, ts);
  ASSERT_EQ(views.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(views[i].sizes(), ts[i].sizes());
    EXPECT_TRUE(torch::equal(views[i], ts[i]));
  }
  // Views: a write through one lands in the flat buffer.
  views[1].fill_(7.0f);
  EXPECT_TRUE(torch::equal(flat.narrow(0, 12, 5), torch::full({5}, 7.0f)));
}

TEST(UtilsOp, NonContiguousInputsAreReadInRowMajorOrder) {
  if (!deepspeed::ops::utils_op_built()) GTEST_SKIP() << "this build has no utils op (DS_BUILD_UTILS=OFF)";
  const auto t = torch::arange(6, torch::kFloat).view({2, 3}).t();
  const auto flat = deepspeed::ops::flatten({t});
  EXPECT_TRUE(torch::equal(flat, torch::tensor({0.0f, 3.0f, 1.0f, 4.0f, 2.0f, 5.0f})));
}

TEST(UtilsOp, MismatchesAreNamed) {
  if (!deepspeed::ops::utils_op_built()) GTEST_SKIP() << "this build has no utils op (DS_BUILD_UTILS=OFF)";
  try {
    deepspeed::ops::flatten({torch::zeros({2}), torch::zeros({2}, torch::kDouble)});
    ADD_FAILURE() << "mixed dtypes accepted";
  } catch (const deepspeed::OpError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 1"), std::string::npos) << e.what();
  }
  try {
    deepspeed::ops::unflatten(torch::zeros({5}), {torch::zeros({2}), torch::zeros({2})});
    ADD_FAILURE() << "sizes that do not add up accepted";
  } catch (const deepspeed::OpError& e) {
    EXPECT_NE(std::string(e.what()).find("5 elements"), std::string::npos) << e.what();
  }
  EXPECT_THROW(deepspeed::ops::unflatten(torch::zeros({2, 2}), {torch::zeros({4})}), deepspeed::OpError);
  EXPECT_EQ(deepspeed::ops::flatten({}).numel(), 0);
}

}  // namespace
