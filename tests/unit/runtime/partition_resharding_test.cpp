// Resharding ZeRO partitions: slicing a group's flat space for N ranks and reassembling it
// gives the flat space back, and partitions for M ranks made from N ranks' partitions equal
// those made directly, for any bucket size.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "partitioning/partition_resharding.h"

namespace deepspeed {
namespace {

TEST(PartitionResharding, RoundTripsBetweenWorldSizes) {
  const std::vector<int64_t> numels{128, 16, 64, 4, 7};
  const std::vector<int64_t> groups{0, 1, 0, 1, 0};
  const int64_t total[2] = {128 + 64 + 7, 16 + 4};
  for (int64_t n : {1, 2, 3, 4}) {
    for (int64_t cap : {10, 50, 1000}) {
      const auto plan_n = plan_buckets(numels, groups, cap, n);
      for (int64_t g : {0, 1}) {
        const auto flat = torch::arange(total[g], torch::kFloat32) + 1;
        std::vector<torch::Tensor> parts;
        for (int64_t r = 0; r < n; ++r) parts.push_back(take_partition(plan_n, g, r, flat));
        const auto back = assemble_group(plan_n, g, parts);
        EXPECT_TRUE(torch::equal(back, flat)) << "n=" << n << " cap=" << cap;
        for (int64_t m : {1, 2, 3, 5}) {
          const auto plan_m = plan_buckets(numels, groups, 37, m);
          for (int64_t r = 0; r < m; ++r) {
            EXPECT_TRUE(torch::equal(take_partition(plan_m, g, r, back), take_partition(plan_m, g, r, flat)))
                << "n=" << n << " m=" << m << " rank " << r;
          }
        }
      }
    }
  }
}

// With bucket classes (ZeRO-3's persistent parameters) buckets close early and carry padding
// in the middle of a group, by an amount that depends on the world size: resharding goes by
// the parameters' elements, not by positions in the padded space.
TEST(PartitionResharding, RoundTripsWithPaddingInsideTheGroup) {
  const std::vector<int64_t> numels{3, 5, 64, 7, 100};
  const std::vector<int64_t> groups(5, 0);
  const std::vector<int64_t> classes{1, 1, 0, 0, 0};
  const auto flat = torch::arange(3 + 5 + 64 + 7 + 100, torch::kFloat32) + 1;
  for (int64_t n : {1, 2, 3, 4}) {
    const auto plan_n = plan_buckets(numels, groups, 50, n, classes);
    std::vector<torch::Tensor> parts;
    for (int64_t r = 0; r < n; ++r) parts.push_back(take_partition(plan_n, 0, r, flat));
    EXPECT_TRUE(torch::equal(assemble_group(plan_n, 0, parts), flat)) << "n=" << n;
    for (int64_t m : {1, 2, 3, 5}) {
      const auto plan_m = plan_buckets(numels, groups, 50, m, classes);
      const auto back = assemble_group(plan_n, 0, parts);
      for (int64_t r = 0; r < m; ++r) {
        EXPECT_TRUE(torch::equal(take_partition(plan_m, 0, r, back), take_partition(plan_m, 0, r, flat)))
            << "n=" << n << " m=" << m << " rank " << r;
      }
    }
  }
}

TEST(PartitionResharding, WrongPartitionsAreRefused) {
  const auto plan = plan_buckets({10}, {0}, 100, 2);
  EXPECT_THROW(assemble_group(plan, 0, {torch::zeros({5})}), std::invalid_argument);
  EXPECT_THROW(assemble_group(plan, 0, {torch::zeros({5}), torch::zeros({4})}), std::invalid_argument);
}

}  // namespace
}  // namespace deepspeed
