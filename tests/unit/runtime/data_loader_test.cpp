// The distributed data loader: sharding, padding, per-epoch shuffling and resuming.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include <deepspeed/data_loader.h>
#include <deepspeed/errors.h>

#include "runtime/timers.h"

using deepspeed::DataLoader;

namespace {

// Sample i is the scalar i, so a batch shows which indices it holds.
DataLoader::BatchReader index_reader() {
  return [](const std::vector<std::size_t>& idx) {
    std::vector<int64_t> v(idx.begin(), idx.end());
    auto t = torch::tensor(v);
    return deepspeed::Example{t.to(torch::kFloat32), t};
  };
}

std::vector<int64_t> epoch_indices(DataLoader& loader) {
  std::vector<int64_t> out;
  for (auto batch : loader) {
    for (int64_t i = 0; i < batch.target.size(0); ++i) out.push_back(batch.target[i].item<int64_t>());
  }
  return out;
}

DataLoader make(std::size_t n, int64_t bs, int64_t rank, int64_t world, bool shuffle = true, bool drop_last = false) {
  DataLoader::Options o;
  o.batch_size = bs;
  o.rank = rank;
  o.world_size = world;
  o.shuffle = shuffle;
  o.drop_last = drop_last;
  return DataLoader(index_reader(), n, o);
}

}  // namespace

TEST(DataLoader, RanksSeeDisjointSharesThatCoverTheDataSet) {
  auto a = make(10, 3, 0, 2), b = make(10, 3, 1, 2);
  auto ia = epoch_indices(a), ib = epoch_indices(b);
  EXPECT_EQ(ia.size(), 5u);
  EXPECT_EQ(ib.size(), 5u);
  EXPECT_EQ(a.size(), 2);  // ceil(5 / 3)
  std::set<int64_t> all(ia.begin(), ia.end());
  all.insert(ib.begin(), ib.end());
  EXPECT_EQ(all.size(), 10u);
}

TEST(DataLoader, PadsByRepeatingTheStartLikeDistributedSampler) {
  auto a = make(5, 10, 0, 2, /*shuffle=*/false), b = make(5, 10, 1, 2, false);
  EXPECT_EQ(epoch_indices(a), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(epoch_indices(b), (std::vector<int64_t>{1, 3, 0}));
}

TEST(DataLoader, DropLastDropsTheTail) {
  auto a = make(11, 2, 0, 2, false, /*drop_last=*/true);
  EXPECT_EQ(a.size(), 2);  // 5 samples per rank, 2 full batches
  EXPECT_EQ(epoch_indices(a), (std::vector<int64_t>{0, 2, 4, 6}));
}

TEST(DataLoader, ShufflesDifferentlyPerEpochAndReproducibly) {
  auto a = make(32, 4, 0, 1), b = make(32, 4, 0, 1);
  auto e0 = epoch_indices(a), e1 = epoch_indices(a);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(a.epoch(), 1);
  EXPECT_EQ(epoch_indices(b), e0);  // same seed, same first epoch
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 32; ++i) EXPECT_EQ(sorted[i], i);
}

TEST(DataLoader, OneRankOrderEqualsTheInterleavedRanks) {
  // What makes world size 1 and 2 with the same global batch train on the same samples.
  auto one = make(16, 4, 0, 1), r0 = make(16, 2, 0, 2), r1 = make(16, 2, 1, 2);
  auto i1 = epoch_indices(one), i0a = epoch_indices(r0), i0b = epoch_indices(r1);
  for (std::size_t k = 0; k < i0a.size(); ++k) {
    EXPECT_EQ(i1[2 * k], i0a[k]);
    EXPECT_EQ(i1[2 * k + 1], i0b[k]);
  }
}

TEST(DataLoader, ResumesAtAPosition) {
  auto a = make(20, 2, 0, 1);
  epoch_indices(a);
  auto second = epoch_indices(a);  // epoch 1
  auto b = make(20, 2, 0, 1);
  b.set_position(1, 3);
  // Before iterating, the loader reports the position it will resume at (a checkpoint
  // saved right after a load must save that, not the untouched start).
  EXPECT_EQ(b.epoch(), 1);
  EXPECT_EQ(b.batches_taken(), 3);
  auto rest = epoch_indices(b);
  EXPECT_EQ(b.epoch(), 1);
  EXPECT_EQ(rest, std::vector<int64_t>(second.begin() + 6, second.end()));
  EXPECT_THROW(b.set_position(0, 11), deepspeed::EngineError);
}

TEST(DataLoader, RejectsBadOptions) {
  EXPECT_THROW(make(10, 0, 0, 1), deepspeed::EngineError);
  EXPECT_THROW(make(10, 1, 2, 2), deepspeed::EngineError);
}

TEST(ThroughputTimer, ReportsAfterTheWarmUpSteps) {
  deepspeed::ThroughputTimer t(16, 2, {}, {});
  std::vector<std::string> lines;
  for (int step = 0; step < 6; ++step) {
    t.start();
    lines.push_back(t.stop(/*global_step=*/true, /*epoch=*/0));
  }
  // Steps 1 and 2 are warm-up: timing starts at step 3; lines at steps 4 and 6.
  EXPECT_TRUE(lines[0].empty() && lines[1].empty() && lines[2].empty() && lines[4].empty());
  EXPECT_NE(lines[3].find("epoch=0/micro_step=4/global_step=4, RunningAvgSamplesPerSec="), std::string::npos)
      << lines[3];
  EXPECT_NE(lines[5].find("CurrSamplesPerSec="), std::string::npos);
  EXPECT_NE(lines[5].find("MemAllocated=0.00GB, MaxMemAllocated=0.00GB"), std::string::npos);
  EXPECT_GT(t.avg_samples_per_sec(), 0.0);
}
