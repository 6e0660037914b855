#include "launcher/local_launcher.h"

#include <algorithm>

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

using Argv = std::vector<std::string>;

LocalLaunchOptions two_ranks() {
  LocalLaunchOptions o;
  o.world = {{"localhost", {0, 1}}};
  o.program = "./train";
  o.program_args = {"--x"};
  o.bind_cores_to_rank = true;
  o.bind_core_list = "0-3,8-11";
  return o;
}

TEST(RankChildren, NumactlWithMemoryBindingPerRank) {
  const NumaTopology numa = {{0, {0, 1, 2, 3}}, {1, {8, 9, 10, 11}}};
  const auto children = build_rank_children(two_ranks(), CoreBinder{true, numa}, "T");
  ASSERT_EQ(children.size(), 2u);
  EXPECT_EQ(children[0].argv, (Argv{"numactl", "-m", "0", "-C", "0-3", "./train", "--local_rank=0", "--x"}));
  EXPECT_EQ(children[1].argv, (Argv{"numactl", "-m", "1", "-C", "8-11", "./train", "--local_rank=1", "--x"}));
  const std::pair<std::string, std::string> omp{"OMP_NUM_THREADS", "4"};
  EXPECT_NE(std::find(children[1].env.begin(), children[1].env.end(), omp), children[1].env.end());
  EXPECT_TRUE(children[1].cpu_affinity.empty());
}

TEST(RankChildren, NumactlWithoutTopologyIsCoresOnly) {
  const auto children = build_rank_children(two_ranks(), CoreBinder{true, {}}, "T");
  EXPECT_EQ(children[0].argv, (Argv{"numactl", "-C", "0-3", "./train", "--local_rank=0", "--x"}));
}

TEST(RankChildren, WithoutNumactlTheChildSetsItsAffinity) {
  const auto children = build_rank_children(two_ranks(), CoreBinder{}, "T");
  EXPECT_EQ(children[1].argv, (Argv{"./train", "--local_rank=1", "--x"}));
  EXPECT_EQ(children[1].cpu_affinity, (std::vector<int>{8, 9, 10, 11}));
}

TEST(RankChildren, NodeEnvReachesEveryRank) {
  auto o = two_ranks();
  o.bind_cores_to_rank = false;
  o.bind_core_list.clear();
  o.node_env = {{"FC_TASK_INDEX", "3"}};
  const std::pair<std::string, std::string> index{"FC_TASK_INDEX", "3"};
  for (const auto& c : build_rank_children(o, CoreBinder{}, "T"))
    EXPECT_NE(std::find(c.env.begin(), c.env.end(), index), c.env.end());
}

TEST(CoreBinderChoice, OffWithoutBinding) {
  auto o = two_ranks();
  o.bind_cores_to_rank = false;
  std::vector<BindingNote> notes;
  const auto b = choose_core_binder(o, notes);
  EXPECT_FALSE(b.numactl);
  EXPECT_TRUE(notes.empty());
}

TEST(CoreBinderChoice, SaysHowItBinds) {
  // Whatever this machine has (numactl or not, memory policy allowed or not), the choice is
  // stated in one note and never throws for a list of existing cores.
  auto o = two_ranks();
  o.bind_core_list = "0";
  o.world = {{"localhost", {0}}};
  std::vector<BindingNote> notes;
  const auto b = choose_core_binder(o, notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].second.find("binding ranks to cores with"), std::string::npos) << notes[0].second;
  EXPECT_EQ(b.numactl, program_in_path("numactl") && notes[0].second.find("sched_setaffinity") == std::string::npos);
}

}  // namespace
}  // namespace deepspeed::launcher
