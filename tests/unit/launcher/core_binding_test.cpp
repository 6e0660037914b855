#include "launcher/core_binding.h"

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

TEST(CoreBinding, ParseList) {
  EXPECT_EQ(parse_core_list("1,3-5,7"), (std::vector<int>{1, 3, 4, 5, 7}));
  EXPECT_EQ(parse_core_list("0"), (std::vector<int>{0}));
  EXPECT_EQ(parse_core_list("0-3"), (std::vector<int>{0, 1, 2, 3}));
}

TEST(CoreBinding, BadRanges) {
  testing::expect_launch_error([] { parse_core_list("3,1"); }, "Bad range");
  testing::expect_launch_error([] { parse_core_list("1-3,2"); }, "Bad range");
  testing::expect_launch_error([] { parse_core_list("5-2"); }, "Bad range");
  testing::expect_launch_error([] { parse_core_list("a"); }, "Bad range");
  testing::expect_launch_error([] { parse_core_list(""); }, "Bad range");
  testing::expect_launch_error([] { parse_core_list("1,,2"); }, "Bad range");
}

TEST(CoreBinding, Compress) {
  EXPECT_EQ(compress_core_list({0, 1, 2, 5}), "0-2,5");
  EXPECT_EQ(compress_core_list({3}), "3");
  EXPECT_EQ(compress_core_list({1, 3, 4, 5, 7}), "1,3-5,7");
}

TEST(CoreBinding, AssignEqualShares) {
  const auto a = assign_cores({0, 1, 2, 3, 4}, 2);
  EXPECT_EQ(a, (std::vector<std::vector<int>>{{0, 1}, {2, 3}}));
  testing::expect_launch_error([] { assign_cores({0}, 2); }, "cannot be shared by 2 local ranks");
}

TEST(CoreBinding, DefaultListIsNonEmptyAndAscending) {
  const auto cores = default_core_list();
  ASSERT_FALSE(cores.empty());
  for (size_t i = 1; i < cores.size(); ++i) EXPECT_LT(cores[i - 1], cores[i]);
}

}  // namespace
}  // namespace deepspeed::launcher
