// partition_uniform / partition_balanced equal DeepSpeed's ds_utils functions: the expected
// boundaries were printed by DeepSpeed's own code for each input (ties included).
#include <deepspeed/pipe_partition.h>

#include <stdexcept>

#include <gtest/gtest.h>

namespace pipe_partition_test {

struct Uniform {
  int64_t items, parts;
  std::vector<int64_t> expected;
};
struct Balanced {
  std::vector<int64_t> weights;
  int64_t parts;
  std::vector<int64_t> expected;
};

TEST(PipePartition, UniformEqualsDeepSpeeds) {
  const std::vector<Uniform> cases = {
      {0, 1, {0, 0}},          {3, 4, {0, 1, 2, 3, 3}},       {4, 4, {0, 1, 2, 3, 4}}, {10, 3, {0, 4, 7, 10}},
      {7, 2, {0, 4, 7}},       {12, 5, {0, 3, 6, 8, 10, 12}}, {1, 1, {0, 1}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(deepspeed::pipe::partition_uniform(c.items, c.parts), c.expected) << c.items << " items, " << c.parts;
  }
}

TEST(PipePartition, BalancedEqualsDeepSpeeds) {
  const std::vector<Balanced> cases = {
      {{1, 1, 1, 1}, 2, {0, 2, 4}},
      {{5, 1, 1, 1, 1, 1}, 2, {0, 1, 6}},
      {{0, 0, 0, 0}, 2, {0, 3, 4}},
      {{1, 2, 3, 4, 5, 6, 7, 8}, 3, {0, 4, 6, 8}},
      {{10, 0, 0, 10}, 2, {0, 3, 4}},
      {{3, 3, 3}, 3, {0, 1, 2, 3}},
      {{7, 1, 1}, 5, {0, 1, 2, 3, 3, 3}},
      {{0, 1, 0, 1, 0, 1, 0, 1}, 4, {0, 3, 5, 7, 8}},
      {{100, 1, 100, 1, 100}, 2, {0, 3, 5}},
      {{2, 2, 2, 2, 2}, 4, {0, 2, 3, 4, 5}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(deepspeed::pipe::partition_balanced(c.weights, c.parts), c.expected) << c.weights.size() << " weights";
  }
}

TEST(PipePartition, RefusesBadInput) {
  EXPECT_THROW(deepspeed::pipe::partition_uniform(4, 0), std::invalid_argument);
  EXPECT_THROW(deepspeed::pipe::partition_uniform(-1, 2), std::invalid_argument);
  EXPECT_THROW(deepspeed::pipe::partition_balanced({1, 2}, 0), std::invalid_argument);
  EXPECT_THROW(deepspeed::pipe::partition_balanced({1, -2, 3}, 2), std::invalid_argument);
}

}  // namespace pipe_partition_test
