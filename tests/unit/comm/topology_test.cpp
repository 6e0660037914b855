// ProcessTopology against DeepSpeed's deepspeed/runtime/pipe/topology.py: every expected value
// below is what DeepSpeed's own class returns for the same axes and dims (its coordinates,
// comm lists and rank reprs, printed by running topology.py), so a difference is ours.
#include <gtest/gtest.h>

#include <stdexcept>

#include <deepspeed/groups.h>
#include <deepspeed/topology.h>

using deepspeed::Groups;
using deepspeed::PipeDataParallelTopology;
using deepspeed::PipeModelDataParallelTopology;
using deepspeed::ProcessTopology;
using Lists = std::vector<std::vector<int64_t>>;

namespace {

Lists coords_of(const ProcessTopology& t) {
  Lists out;
  for (int64_t r = 0; r < t.world_size(); ++r) out.push_back(t.get_coord(r));
  return out;
}

}  // namespace

TEST(ProcessTopology, PipeDataTwoByTwoMatchesDeepSpeed) {
  const auto t = PipeDataParallelTopology(2, 2);
  EXPECT_EQ(t.get_axis_names(), (std::vector<std::string>{"pipe", "data"}));
  EXPECT_EQ(coords_of(t), (Lists{{0, 0}, {0, 1}, {1, 0}, {1, 1}}));
  EXPECT_EQ(t.get_axis_comm_lists("pipe"), (Lists{{0, 2}, {1, 3}}));
  EXPECT_EQ(t.get_axis_comm_lists("data"), (Lists{{0, 1}, {2, 3}}));
  EXPECT_EQ(t.get_rank_repr(3), "");
}

TEST(ProcessTopology, DataByModelTwoByTwoMatchesDeepSpeed) {
  const auto t = PipeModelDataParallelTopology(1, 2, 2);
  EXPECT_EQ(t.get_axis_names(), (std::vector<std::string>{"pipe", "data", "model"}));
  EXPECT_EQ(coords_of(t), (Lists{{0, 0, 0}, {0, 0, 1}, {0, 1, 0}, {0, 1, 1}}));
  EXPECT_EQ(t.get_axis_comm_lists("pipe"), (Lists{{0}, {1}, {2}, {3}}));
  EXPECT_EQ(t.get_axis_comm_lists("data"), (Lists{{0, 2}, {1, 3}}));
  EXPECT_EQ(t.get_axis_comm_lists("model"), (Lists{{0, 1}, {2, 3}}));
  EXPECT_EQ(t.get_rank_repr(0), "model_00");
  EXPECT_EQ(t.get_rank_repr(3), "model_01");
}

TEST(ProcessTopology, PipeDataModelTwoByTwoByTwoMatchesDeepSpeed) {
  const auto t = PipeModelDataParallelTopology(2, 2, 2);
  EXPECT_EQ(coords_of(t), (Lists{{0, 0, 0}, {0, 0, 1}, {0, 1, 0}, {0, 1, 1}, {1, 0, 0}, {1, 0, 1}, {1, 1, 0}, {1, 1, 1}}));
  EXPECT_EQ(t.get_axis_comm_lists("pipe"), (Lists{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(t.get_axis_comm_lists("data"), (Lists{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(t.get_axis_comm_lists("model"), (Lists{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  for (int64_t r = 0; r < 8; ++r) EXPECT_EQ(t.get_rank_repr(r), r % 2 ? "model_01" : "model_00");
  // DeepSpeed's docstring examples, and PipelineParallelGrid's model-parallel groups (the ranks
  // of one data index, sorted).
  EXPECT_EQ(t.filter_match({{"pipe", 0}, {"data", 1}}), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.get_axis_list("data", 0), (std::vector<int64_t>{0, 1, 4, 5}));
  EXPECT_EQ(t.get_axis_list("data", 1), (std::vector<int64_t>{2, 3, 6, 7}));
  EXPECT_EQ(t.get_rank({{"pipe", 1}, {"data", 0}, {"model", 1}}), 5);
  EXPECT_EQ(t.get_coord(6, "pipe"), 1);
  EXPECT_EQ(t.get_rank_repr(5, {}), "pipe_01-data_00-model_01");
  EXPECT_EQ(t.get_rank_repr(5, {"model"}, "=", "/"), "pipe=01/data=00");
}

TEST(ProcessTopology, OneByFourMatchesDeepSpeed) {
  const auto pd = PipeDataParallelTopology(1, 4);
  EXPECT_EQ(pd.get_axis_comm_lists("data"), (Lists{{0, 1, 2, 3}}));
  EXPECT_EQ(pd.get_axis_comm_lists("pipe"), (Lists{{0}, {1}, {2}, {3}}));
  EXPECT_EQ(coords_of(pd), (Lists{{0, 0}, {0, 1}, {0, 2}, {0, 3}}));
  const auto pmd = PipeModelDataParallelTopology(1, 4, 1);
  EXPECT_EQ(pmd.get_axis_comm_lists("model"), (Lists{{0, 1, 2, 3}}));
  EXPECT_EQ(pmd.get_axis_comm_lists("data"), (Lists{{0}, {1}, {2}, {3}}));
  EXPECT_EQ(pmd.get_rank_repr(2), "model_02");
}

TEST(ProcessTopology, AnswersForAxesItDoesNotHaveAsDeepSpeed) {
  const auto t = PipeDataParallelTopology(2, 2);
  EXPECT_EQ(t.get_dim("model"), 0);
  EXPECT_TRUE(t.get_axis_comm_lists("model").empty());
}

TEST(ProcessTopology, RefusesBadShapesAndCoordinates) {
  EXPECT_THROW(ProcessTopology({}, {}), std::invalid_argument);
  EXPECT_THROW(ProcessTopology({"a", "a"}, {2, 2}), std::invalid_argument);
  EXPECT_THROW(ProcessTopology({"a"}, {0}), std::invalid_argument);
  EXPECT_THROW(ProcessTopology({"a", "b"}, {2}), std::invalid_argument);
  const auto t = PipeDataParallelTopology(2, 2);
  EXPECT_THROW(t.get_rank({{"pipe", 0}}), std::invalid_argument);                 // a slice
  EXPECT_THROW(t.get_rank({{"pipe", 2}, {"data", 0}}), std::invalid_argument);    // outside
  EXPECT_THROW(t.get_rank({{"pipe", 0}, {"model", 0}}), std::invalid_argument);   // unknown axis
  EXPECT_THROW(t.get_coord(4), std::invalid_argument);
  EXPECT_THROW(t.get_coord(-1), std::invalid_argument);
  EXPECT_THROW(t.filter_match({{"model", 0}}), std::invalid_argument);
}

// DeepSpeed's _get_expert_parallel_ranks docstring: world 16, tensor 2, expert 4.
TEST(ExpertGroups, RankListsMatchDeepSpeedWithTensorParallelism) {
  const auto lists = Groups::expert_rank_lists(16, 2, 4, 1);
  EXPECT_EQ(lists.expert_parallel, (Lists{{0, 2, 4, 6}, {8, 10, 12, 14}, {1, 3, 5, 7}, {9, 11, 13, 15}}));
  EXPECT_EQ(lists.expert_data_parallel,
            (Lists{{0, 8}, {2, 10}, {4, 12}, {6, 14}, {1, 9}, {3, 11}, {5, 13}, {7, 15}}));
}

// _create_expert_and_data_parallel's docstring (E + D, no model parallelism): world 16, ep 2.
TEST(ExpertGroups, RankListsMatchDeepSpeedWithoutModelParallelism) {
  const auto lists = Groups::expert_rank_lists(16, 1, 2, 1);
  Lists ep, edp(2);
  for (int64_t i = 0; i < 8; ++i) ep.push_back({2 * i, 2 * i + 1});
  for (int64_t r = 0; r < 16; ++r) edp[static_cast<size_t>(r % 2)].push_back(r);
  EXPECT_EQ(lists.expert_parallel, ep);
  EXPECT_EQ(lists.expert_data_parallel, edp);
}

TEST(ExpertGroups, PipelineStagesKeepTheirOwnExperts) {
  // world 8, pipe 2, ep 2: each stage's 4 data ranks form two expert groups.
  const auto lists = Groups::expert_rank_lists(8, 1, 2, 2);
  EXPECT_EQ(lists.expert_parallel, (Lists{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(lists.expert_data_parallel, (Lists{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
}

TEST(ExpertGroups, RefusesSizesThatDoNotDivide) {
  EXPECT_THROW(Groups::expert_rank_lists(8, 3, 1, 1), std::exception);
  EXPECT_THROW(Groups::expert_rank_lists(8, 2, 3, 1), std::exception);
}
