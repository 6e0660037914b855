#include "partitioning/bucket_plan.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace deepspeed {

BucketPlan plan_buckets(const std::vector<int64_t>& numels, const std::vector<int64_t>& groups,
                        int64_t bucket_elements, int64_t partitions, const std::vector<int64_t>& classes) {
  if (numels.size() != groups.size()) throw std::invalid_argument("plan_buckets: numels and groups differ in length");
  if (!classes.empty() && classes.size() != numels.size()) {
    throw std::invalid_argument("plan_buckets: classes and numels differ in length");
  }
  if (partitions < 1) throw std::invalid_argument("plan_buckets: partitions must be >= 1");
  BucketPlan plan;
  plan.partitions = partitions;
  const int64_t n = static_cast<int64_t>(numels.size());
  int64_t group_count = 0;
  for (auto g : groups) {
    if (g < 0) throw std::invalid_argument("plan_buckets: negative group index");
    group_count = std::max(group_count, g + 1);
  }
  const int64_t cap = std::max(partitions, bucket_elements / partitions * partitions);
  plan.buckets_of.assign(n, {});
  plan.group_size.assign(group_count, 0);

  std::vector<BucketPlan::Bucket> open(group_count);
  std::vector<int64_t> filled(group_count, 0);  // elements of the open bucket in use
  for (int64_t g = 0; g < group_count; ++g) open[g].group = g;
  auto close = [&](int64_t g) {
    auto& b = open[g];
    const int64_t used = filled[g];
    b.size = (used + partitions - 1) / partitions * partitions;
    b.slice = b.size / partitions;
    plan.group_size[g] = b.group_offset + b.size;
    const int64_t index = static_cast<int64_t>(plan.buckets.size());
    for (const auto& e : b.entries) plan.buckets_of[e.param].push_back(index);
    const int64_t next_offset = b.group_offset + b.size;
    plan.buckets.push_back(std::move(b));
    open[g] = BucketPlan::Bucket{};
    open[g].group = g;
    open[g].group_offset = next_offset;
    filled[g] = 0;
  };
  std::vector<int64_t> open_class(group_count, 0);  // the class of the open bucket's parameters
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t g = groups[i];
    if (!classes.empty()) {
      if (filled[g] > 0 && classes[i] != open_class[g]) close(g);
      open_class[g] = classes[i];
    }
    int64_t done = 0;
    while (done < numels[i]) {
      const int64_t take = std::min(numels[i] - done, cap - filled[g]);
      open[g].entries.push_back({i, done, filled[g], take});
      filled[g] += take;
      done += take;
      if (filled[g] == cap) close(g);
    }
  }
  for (int64_t g = 0; g < group_count; ++g) {
    if (filled[g] > 0) close(g);
  }
  return plan;
}

}  // namespace deepspeed
