// FetchSchedule: the trace of first uses, prefetch along it, release by reuse distance and by
// the live budget (the zero_optimization.stage3_* keys), without any communication.
#include <gtest/gtest.h>

#include "runtime/zero/fetch_schedule.h"

using deepspeed::FetchSchedule;
using Phase = deepspeed::FetchSchedule::Phase;

namespace {

// One step over buckets used in forward as `forward` and in backward as `backward`.
void run_step(FetchSchedule& s, const std::vector<int64_t>& forward, const std::vector<int64_t>& backward) {
  s.begin(Phase::Forward);
  for (int64_t b : forward) s.touch(b);
  s.begin(Phase::Backward);
  for (int64_t b : backward) s.touch(b);
}

std::vector<bool> live_set(size_t n, std::initializer_list<int64_t> live) {
  std::vector<bool> v(n, false);
  for (int64_t b : live) v[b] = true;
  return v;
}

TEST(FetchSchedule, RecordsFirstUsesPerPhaseAsTheNextStepsTrace) {
  FetchSchedule s({10, 10, 10}, {}, {});
  s.begin(Phase::Forward);
  EXPECT_TRUE(s.touch(2));
  EXPECT_FALSE(s.touch(2)) << "a second use in the same phase is not a first use";
  EXPECT_TRUE(s.touch(1));
  s.begin(Phase::Backward);
  EXPECT_TRUE(s.touch(1)) << "backward starts its own first uses";
  EXPECT_TRUE(s.touch(2));
  EXPECT_TRUE(s.trace().empty()) << "the first step has no trace yet";
  s.begin(Phase::Forward);
  EXPECT_EQ(s.trace(), (std::vector<int64_t>{2, 1, 1, 2}));
  EXPECT_EQ(s.cursor(), -1);
  s.touch(2);
  EXPECT_EQ(s.cursor(), 0);
  s.touch(1);
  EXPECT_EQ(s.cursor(), 1);
  s.begin(Phase::Backward);
  s.touch(1);
  EXPECT_EQ(s.cursor(), 2) << "backward continues the trace where forward left it";
}

TEST(FetchSchedule, PrefetchesTheNextBucketsOfTheTraceWithinItsBudget) {
  FetchSchedule s({10, 10, 10, 10}, {}, {.prefetch_elements = 20});
  run_step(s, {0, 1, 2, 3}, {3, 2, 1, 0});
  s.begin(Phase::Forward);
  s.touch(0);
  EXPECT_EQ(s.prefetch(live_set(4, {0})), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(s.prefetch(live_set(4, {0, 1})), (std::vector<int64_t>{2, 3})) << "live buckets are skipped";
  s.touch(1);
  s.touch(2);
  s.touch(3);
  // At the end of forward the trace continues into backward: 3 again is live, 2 is next.
  EXPECT_EQ(s.prefetch(live_set(4, {3})), (std::vector<int64_t>{2, 1}));
}

TEST(FetchSchedule, NoPrefetchWithoutATraceOrWhenDisabled) {
  FetchSchedule off({10, 10}, {}, {.prefetch_elements = 0});
  run_step(off, {0, 1}, {1, 0});
  off.begin(Phase::Forward);
  off.touch(0);
  EXPECT_TRUE(off.prefetch(live_set(2, {0})).empty());
  FetchSchedule first({10, 10}, {}, {.prefetch_elements = 100});
  first.begin(Phase::Forward);
  first.touch(0);
  EXPECT_TRUE(first.prefetch(live_set(2, {0})).empty()) << "the first step has nothing to predict from";
}

TEST(FetchSchedule, AModelThatTakesAnotherPathLeavesTheTrace) {
  FetchSchedule s({10, 10, 10}, {}, {.prefetch_elements = 10});
  run_step(s, {0, 1, 2}, {2, 1, 0});
  s.begin(Phase::Forward);
  s.touch(0);
  s.touch(2);  // the trace said 1
  EXPECT_EQ(s.cursor(), -1);
  EXPECT_TRUE(s.prefetch(live_set(3, {0, 2})).empty());
}

TEST(FetchSchedule, ReleasesWhatIsReusedFartherThanTheReuseDistance) {
  // Forward 0 1 2 3, backward 3 2 1 0, each bucket 10 elements.
  FetchSchedule s({10, 10, 10, 10}, {}, {.max_reuse_distance = 25});
  run_step(s, {0, 1, 2, 3}, {3, 2, 1, 0});
  s.begin(Phase::Forward);
  s.touch(0);
  s.touch(1);
  // At bucket 1: bucket 0 is next used after 1 2 3 3 2 1 are gathered (60 > 25): release.
  EXPECT_EQ(s.releases(live_set(4, {0, 1}), {1}, 0), (std::vector<int64_t>{0}));
  s.touch(2);
  s.touch(3);
  // At bucket 3: bucket 2's next use is after 3 (10 <= 25): keep it.
  EXPECT_TRUE(s.releases(live_set(4, {2, 3}), {3}, 0).empty());
  s.begin(Phase::Backward);
  s.touch(3);
  s.touch(2);
  // In backward bucket 3 has no later use this step.
  EXPECT_EQ(s.releases(live_set(4, {2, 3}), {2}, 0), (std::vector<int64_t>{3}));
}

TEST(FetchSchedule, TheLiveBudgetReleasesTheLeastRecentlyUsedFirst) {
  FetchSchedule s({10, 10, 10, 10}, {}, {.max_live_elements = 25});
  s.begin(Phase::Forward);
  s.touch(0);
  s.touch(1);
  s.touch(0);  // 1 is now the least recently used
  s.touch(2);
  // Gathering 2 (10) next to 0 and 1 (20) exceeds 25: one must go, the older one.
  EXPECT_EQ(s.releases(live_set(4, {0, 1}), {2}, 10), (std::vector<int64_t>{1}));
  // Two must go for 3 when 0, 1 and 2 are live; the current operation's bucket never does.
  s.touch(3);
  EXPECT_EQ(s.releases(live_set(4, {0, 1, 2}), {3, 0}, 10), (std::vector<int64_t>{1, 2}));
}

TEST(FetchSchedule, PersistentBucketsAreNeverReleased) {
  FetchSchedule s({10, 10, 10}, {false, true, false}, {.max_live_elements = 0, .max_reuse_distance = 0});
  run_step(s, {0, 1, 2}, {2, 1, 0});
  s.begin(Phase::Forward);
  s.touch(0);
  s.touch(1);
  s.touch(2);
  const auto out = s.releases(live_set(3, {0, 1, 2}), {2}, 0);
  EXPECT_EQ(out, (std::vector<int64_t>{0}));
}

}  // namespace
