// The job's groups on CPU ranks over Gloo, for the shapes DeepSpeed's topology tests use: each
// rank's group of each kind has the members DeepSpeed's layout gives it (the lists below are
// DeepSpeed's get_axis_comm_lists / PipelineParallelGrid model groups / (data, sequence) device
// mesh / _get_expert_parallel_ranks for the same sizes), and really connects them.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <sstream>

#include "gloo_ranks_test.h"
#include "multiprocess.h"

using deepspeed::testing::run_ranks;
using Lists = std::vector<std::vector<int64_t>>;

namespace {

const std::string kGroupsWorker = DS_BINARY_DIR "/bin/ds_test_groups_worker";

std::map<std::string, std::string> parse(const std::string& output) {
  std::map<std::string, std::string> out;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    const auto space = line.find(' ');
    if (space == std::string::npos) continue;
    if (line.rfind("allreduce ", 0) == 0) {
      const auto second = line.find(' ', space + 1);
      out["allreduce " + line.substr(space + 1, second - space - 1)] = line.substr(second + 1);
    } else {
      out[line.substr(0, space)] = line.substr(space + 1);
    }
  }
  return out;
}

Lists singletons(int64_t n) {
  Lists out;
  for (int64_t r = 0; r < n; ++r) out.push_back({r});
  return out;
}

void expect_groups(int world, const std::vector<std::string>& args, const std::map<std::string, Lists>& expected) {
  deepspeed::testing::RunOptions options;
  options.timeout = std::chrono::seconds(120);
  const auto ranks = run_ranks(world, kGroupsWorker, args, options);
  for (const auto& r : ranks) {
    ASSERT_EQ(r.exit_code, 0) << "rank " << r.rank << ":\n" << r.output;
    const auto printed = parse(r.output);
    for (const auto& [kind, lists] : expected) {
      const std::vector<int64_t>* mine = nullptr;
      for (const auto& l : lists) {
        if (std::find(l.begin(), l.end(), r.rank) != l.end()) mine = &l;
      }
      ASSERT_NE(mine, nullptr) << kind << ": rank " << r.rank << " is in no expected group";
      std::string joined;
      for (const auto m : *mine) joined += (joined.empty() ? "" : ",") + std::to_string(m);
      EXPECT_EQ(printed.count(kind) ? printed.at(kind) : "<none>", joined) << kind << " group of rank " << r.rank;
      const auto sum = std::accumulate(mine->begin(), mine->end(), int64_t{0});
      EXPECT_EQ(printed.count("allreduce " + kind) ? printed.at("allreduce " + kind) : "<none>", std::to_string(sum))
          << kind << " all-reduce on rank " << r.rank;
    }
  }
}

}  // namespace

using Groups = deepspeed::testing::GlooRanksTest;

TEST_F(Groups, DataByTensorTwoByTwo) {
  expect_groups(4, {"--tensor", "2"},
                {{"data", {{0, 2}, {1, 3}}},
                 {"tensor", {{0, 1}, {2, 3}}},
                 {"pipe", singletons(4)},
                 {"model", {{0, 1}, {2, 3}}},
                 {"sequence", singletons(4)},
                 {"sequence_data", {{0, 2}, {1, 3}}}});
}

TEST_F(Groups, PipeByDataByTensorTwoByTwoByTwo) {
  expect_groups(8, {"--pipe", "2", "--tensor", "2"},
                {{"data", {{0, 2}, {1, 3}, {4, 6}, {5, 7}}},
                 {"tensor", {{0, 1}, {2, 3}, {4, 5}, {6, 7}}},
                 {"pipe", {{0, 4}, {1, 5}, {2, 6}, {3, 7}}},
                 {"model", {{0, 1, 4, 5}, {2, 3, 6, 7}}},
                 {"sequence_data", {{0, 2}, {1, 3}, {4, 6}, {5, 7}}}});
}

TEST_F(Groups, DataOnlyOneByFour) {
  expect_groups(4, {},
                {{"data", {{0, 1, 2, 3}}},
                 {"tensor", singletons(4)},
                 {"pipe", singletons(4)},
                 {"model", singletons(4)},
                 {"sequence", singletons(4)}});
}

TEST_F(Groups, DataBySequenceTwoByTwo) {
  expect_groups(4, {"--sequence", "2"},
                {{"data", {{0, 2}, {1, 3}}},
                 {"sequence", {{0, 1}, {2, 3}}},
                 {"sequence_data", {{0, 1, 2, 3}}},
                 {"model", singletons(4)}});
}

TEST_F(Groups, ExpertGroupsCarvedFromTheDataGroup) {
  expect_groups(4, {"--ep_size", "2"}, {{"expert", {{0, 1}, {2, 3}}}, {"expert_data", {{0, 2}, {1, 3}}}});
}

TEST_F(Groups, SizesThatDoNotDivideTheWorldAreRefusedOnEveryRank) {
  const auto ranks = run_ranks(4, kGroupsWorker, {"--tensor", "3"});
  for (const auto& r : ranks) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("the world size 4 is not divisible by pipeline stages (1) x tensor parallel (3)"),
              std::string::npos)
        << r.output;
  }
}
