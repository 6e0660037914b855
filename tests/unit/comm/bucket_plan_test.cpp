// The bucket plan is pure arithmetic: every element of every parameter lands in exactly one
// bucket, groups never share one, and each rank's share of a group is ceil(numel / N).
#include <gtest/gtest.h>

#include <numeric>

#include "partitioning/bucket_plan.h"

namespace deepspeed {
namespace {

// Checks the invariants and returns, per parameter, how many of its elements were placed.
std::vector<int64_t> check_plan(const BucketPlan& plan, const std::vector<int64_t>& numels,
                                const std::vector<int64_t>& groups, int64_t cap) {
  std::vector<int64_t> placed(numels.size(), 0);
  std::vector<int64_t> next_group_offset(plan.group_size.size(), 0);
  for (std::size_t b = 0; b < plan.buckets.size(); ++b) {
    const auto& bucket = plan.buckets[b];
    EXPECT_EQ(bucket.size % plan.partitions, 0) << "bucket " << b;
    EXPECT_EQ(bucket.slice * plan.partitions, bucket.size);
    EXPECT_LE(bucket.size, std::max(cap, plan.partitions));
    EXPECT_EQ(bucket.group_offset, next_group_offset[bucket.group]) << "buckets of a group are contiguous";
    next_group_offset[bucket.group] += bucket.size;
    int64_t end = 0;
    for (const auto& e : bucket.entries) {
      EXPECT_EQ(groups[e.param], bucket.group) << "groups never share a bucket";
      EXPECT_EQ(e.bucket_offset, end) << "entries are packed";
      EXPECT_EQ(e.param_offset, placed[e.param]) << "a parameter is placed in order";
      placed[e.param] += e.length;
      end += e.length;
    }
    EXPECT_LT(bucket.size - end, plan.partitions) << "padding is less than one element per rank";
  }
  for (std::size_t g = 0; g < plan.group_size.size(); ++g) EXPECT_EQ(plan.group_size[g], next_group_offset[g]);
  for (std::size_t i = 0; i < numels.size(); ++i) {
    EXPECT_EQ(placed[i], numels[i]) << "parameter " << i;
    for (auto b : plan.buckets_of[i]) {
      bool found = false;
      for (const auto& e : plan.buckets[b].entries) found = found || e.param == static_cast<int64_t>(i);
      EXPECT_TRUE(found);
    }
  }
  return placed;
}

TEST(BucketPlan, OneBucketForSmallModels) {
  const std::vector<int64_t> numels{128, 16, 64, 4};
  const std::vector<int64_t> groups(4, 0);
  auto plan = plan_buckets(numels, groups, 500000000, 1);
  ASSERT_EQ(plan.buckets.size(), 1u);
  // Last parameter first: the order in which backward produces gradients.
  ASSERT_EQ(plan.buckets[0].entries.size(), 4u);
  EXPECT_EQ(plan.buckets[0].entries[0].param, 3);
  EXPECT_EQ(plan.buckets[0].entries[3].param, 0);
  EXPECT_EQ(plan.buckets[0].size, 212);
  check_plan(plan, numels, groups, 500000000);
}

TEST(BucketPlan, PartitionShareIsCeilOfGroupSize) {
  const std::vector<int64_t> numels{128, 16, 64, 4};
  const std::vector<int64_t> groups(4, 0);
  for (int64_t n : {1, 2, 3, 4, 7}) {
    for (int64_t cap : {1, 5, 50, 64, 1000}) {
      auto plan = plan_buckets(numels, groups, cap, n);
      check_plan(plan, numels, groups, cap / n * n);
      EXPECT_EQ(plan.partition_size(0), (212 + n - 1) / n) << "n=" << n << " cap=" << cap;
    }
  }
}

// Classes (ZeRO-3: persistent or not) never share a bucket: the bucket open when the class
// changes closes early, padded to a multiple of the world size.
TEST(BucketPlan, ClassesNeverShareABucket) {
  const std::vector<int64_t> numels{3, 5, 64, 7, 100};
  const std::vector<int64_t> groups{0, 0, 0, 1, 0};
  const std::vector<int64_t> classes{1, 1, 0, 0, 0};
  for (int64_t n : {1, 2, 3}) {
    auto plan = plan_buckets(numels, groups, 50, n, classes);
    check_plan(plan, numels, groups, 50 / n * n);
    for (const auto& b : plan.buckets) {
      for (const auto& e : b.entries) {
        EXPECT_EQ(classes[e.param], classes[b.entries.front().param]) << "a bucket mixes classes, n=" << n;
      }
    }
  }
  EXPECT_THROW(plan_buckets(numels, groups, 50, 2, {1, 0}), std::invalid_argument);
}

TEST(BucketPlan, ParametersStraddleBuckets) {
  auto plan = plan_buckets({10, 25}, {0, 0}, 20, 2);
  // Flat space (last first): p1[0..25) then p0[0..10), cut every 20 elements.
  ASSERT_EQ(plan.buckets.size(), 2u);
  ASSERT_EQ(plan.buckets[0].entries.size(), 1u);
  EXPECT_EQ(plan.buckets[0].entries[0].length, 20);
  ASSERT_EQ(plan.buckets[1].entries.size(), 2u);
  EXPECT_EQ(plan.buckets[1].entries[0].param, 1);
  EXPECT_EQ(plan.buckets[1].entries[0].param_offset, 20);
  EXPECT_EQ(plan.buckets[1].entries[0].length, 5);
  EXPECT_EQ(plan.buckets[1].entries[1].param, 0);
  EXPECT_EQ(plan.buckets[1].size, 16);  // 15 elements padded to a multiple of 2
  EXPECT_EQ(plan.buckets_of[1], (std::vector<int64_t>{0, 1}));
}

TEST(BucketPlan, GroupsFillTheirOwnBuckets) {
  // Interleaved decay / no-decay groups, as weight and bias usually are.
  const std::vector<int64_t> numels{30, 3, 30, 3, 30, 3};
  const std::vector<int64_t> groups{0, 1, 0, 1, 0, 1};
  auto plan = plan_buckets(numels, groups, 60, 3);
  check_plan(plan, numels, groups, 60);
  EXPECT_EQ(plan.partition_size(0), 30);
  EXPECT_EQ(plan.partition_size(1), 3);
  // Group 0's first bucket fills up first (p4, p2), then what is left of each group.
  ASSERT_EQ(plan.buckets.size(), 3u);
  EXPECT_EQ(plan.buckets[0].group, 0);
  EXPECT_EQ(plan.buckets[1].group, 0);
  EXPECT_EQ(plan.buckets[2].group, 1);
}

TEST(BucketPlan, EmptyAndBadInput) {
  auto plan = plan_buckets({}, {}, 100, 2);
  EXPECT_TRUE(plan.buckets.empty());
  EXPECT_THROW(plan_buckets({1}, {}, 100, 2), std::invalid_argument);
  EXPECT_THROW(plan_buckets({1}, {0}, 100, 0), std::invalid_argument);
}

}  // namespace
}  // namespace deepspeed
