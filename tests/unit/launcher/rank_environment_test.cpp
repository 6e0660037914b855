#include "launcher/rank_environment.h"

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

TEST(RankEnvironment, SingleNode) {
  const auto ranks = node_rank_environments({{"localhost", {0, 1, 2}}}, 0, "127.0.0.1", 29500);
  ASSERT_EQ(ranks.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const auto& env = ranks[i].env;
    EXPECT_EQ(env.at("RANK"), std::to_string(i));
    EXPECT_EQ(env.at("LOCAL_RANK"), std::to_string(i));
    EXPECT_EQ(env.at("WORLD_SIZE"), "3");
    EXPECT_EQ(env.at("LOCAL_SIZE"), "3");
    EXPECT_EQ(env.at("CROSS_RANK"), "0");
    EXPECT_EQ(env.at("CROSS_SIZE"), "1");
    EXPECT_EQ(env.at("MASTER_ADDR"), "127.0.0.1");
    EXPECT_EQ(env.at("MASTER_PORT"), "29500");
    EXPECT_EQ(env.at("CUDA_VISIBLE_DEVICES"), "0,1,2");
    EXPECT_EQ(env.size(), 9u);
  }
}

TEST(RankEnvironment, RanksAreContiguousPerNodeInWorldOrder) {
  const Resources world = {{"b", {0, 1, 2}}, {"a", {1, 3}}};
  const auto node1 = node_rank_environments(world, 1, "10.0.0.1", 1234);
  ASSERT_EQ(node1.size(), 2u);
  EXPECT_EQ(node1[0].rank, 3);
  EXPECT_EQ(node1[1].rank, 4);
  EXPECT_EQ(node1[0].env.at("RANK"), "3");
  EXPECT_EQ(node1[1].env.at("RANK"), "4");
  EXPECT_EQ(node1[0].env.at("WORLD_SIZE"), "5");
  EXPECT_EQ(node1[0].env.at("LOCAL_SIZE"), "2");
  EXPECT_EQ(node1[0].env.at("CROSS_RANK"), "1");
  EXPECT_EQ(node1[0].env.at("CROSS_SIZE"), "2");
  EXPECT_EQ(node1[0].env.at("CUDA_VISIBLE_DEVICES"), "1,3");
  EXPECT_EQ(node1[0].env.at("MASTER_PORT"), "1234");
  EXPECT_EQ(node1[0].host, "a");
}

TEST(RankEnvironment, LocalRankIsIndexOnNodeNotRankModLocalSize) {
  // DeepSpeed gives ranks 3,4 on a 2-slot node local ranks 1,0 (3%2, 4%2); README: 0,1.
  const Resources world = {{"b", {0, 1, 2}}, {"a", {0, 1}}};
  const auto node1 = node_rank_environments(world, 1, "x", 1);
  EXPECT_EQ(node1[0].env.at("LOCAL_RANK"), "0");
  EXPECT_EQ(node1[1].env.at("LOCAL_RANK"), "1");
  EXPECT_EQ(node1[0].local_rank, 0);
  EXPECT_EQ(node1[1].local_rank, 1);
}

TEST(RankEnvironment, AllRanks) {
  const auto all = all_rank_environments({{"b", {0, 1, 2}}, {"a", {0, 1}}}, "x", 1);
  ASSERT_EQ(all.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all[i].rank, i);
  EXPECT_EQ(all[4].node_rank, 1);
}

TEST(RankEnvironment, NodeRankOutOfRange) {
  testing::expect_launch_error([] { node_rank_environments({{"a", {0}}}, 1, "x", 1); }, "--node_rank=1");
  testing::expect_launch_error([] { node_rank_environments({{"a", {0}}}, -1, "x", 1); }, "--node_rank=-1");
}

}  // namespace
}  // namespace deepspeed::launcher
