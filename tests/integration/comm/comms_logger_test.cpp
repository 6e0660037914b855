// The comms logger on 2 ranks over Gloo (loopback): the count and message size of each
// collective the process group runs, prof_ops, debug's caller names, DeepSpeed's summary
// table on rank 0 only; and the engine's training run with comms_logger and
// wall_clock_breakdown on.
#include <gtest/gtest.h>

#include <regex>

#include "gloo_ranks_test.h"
#include "multiprocess.h"

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

namespace {

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_comms_worker";
const std::string kTrainWorker = DS_BINARY_DIR "/bin/ds_test_train_worker";

std::vector<deepspeed::testing::RankResult> run(int world, const std::string& program, const std::vector<std::string>& args) {
  auto r = run_ranks(world, program, args, {.timeout = std::chrono::seconds(60), .env = {}});
  for (const auto& rank : r) {
    EXPECT_FALSE(rank.timed_out) << "rank " << rank.rank << " hung:\n" << rank.output;
    EXPECT_EQ(rank.exit_code, 0) << "rank " << rank.rank << ":\n" << rank.output;
  }
  return r;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

using CommsLoggerGloo = deepspeed::testing::GlooRanksTest;

TEST_F(CommsLoggerGloo, CountsAndSizesOfEachCollectiveOnTwoRanks) {
  auto r = run(2, kWorker, {});
  ASSERT_EQ(r.size(), 2u);
  for (const auto& rank : r) {
    const std::string& out = rank.output;
    EXPECT_TRUE(contains(out, "ops 10\n")) << out;
    // In the order first logged; Gloo has no reduce-scatter: it runs (and logs) an all_reduce.
    EXPECT_TRUE(contains(out, "record all_reduce|32|1\nrecord all_reduce|4000|3\n"
                              "record broadcast|40|2\n"
                              "record all_gather|16|1\nrecord all_gather|20|1\n"
                              "record all_to_all_single|16|1\nrecord barrier|0|1\n"))
        << out;
    // log_summary's own barriers are not logged.
    EXPECT_TRUE(contains(out, "ops after summary 10\n")) << out;
  }
  const std::string& out0 = r[0].output;
  EXPECT_TRUE(contains(out0, "Comm. Op            Message Size        Count               Total Latency(ms)   "
                             "Avg Latency(ms)     tput_avg (Gbps)     busbw_avg (Gbps)    \n"))
      << out0;
  EXPECT_TRUE(std::regex_search(out0, std::regex("\nall_reduce\n {20}32\\.0 B {14}1 {19}[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +\n"
                                                 " {20}3\\.91 KB {13}3 {19}")))
      << out0;
  EXPECT_TRUE(std::regex_search(out0, std::regex("\nbarrier\n {20}0B {18}1 {19}"))) << out0;
  EXPECT_FALSE(contains(r[1].output, "Comm. Op")) << "only rank 0 prints the table\n" << r[1].output;
}

TEST_F(CommsLoggerGloo, ProfOpsAndDebugCallerNames) {
  auto r = run(2, kWorker, {"--prof_ops", "all_reduce", "--debug"});
  const std::string& out = r.at(0).output;
  EXPECT_TRUE(contains(out, "ops 4\n")) << out;
  // The caller is the user's function, also for the all_reduce that stands in for reduce_scatter.
  EXPECT_TRUE(contains(out, "record all_reduce | [Caller Func: main]|32|1\n"
                            "record all_reduce | [Caller Func: main]|4000|3\n"))
      << out;
  EXPECT_FALSE(contains(out, "record broadcast")) << out;
}

// The engine sets the logger up from the config: the initial broadcasts and one all-reduce
// of the 212 gradients (848 bytes) per step, summarised when the engine goes away.
TEST(CommsLogger, EngineLogsItsCollectivesAndPrintsTheSummaryAtTheEnd) {
  TempDir dir;
  const std::string cfg = dir.file("ds_config.json");
  write_file(cfg, R"({"train_micro_batch_size_per_gpu": 4, "steps_per_print": 5, "wall_clock_breakdown": true,
    "optimizer": {"type": "Adam", "params": {"lr": 0.01}},
    "comms_logger": {"enabled": true, "verbose": true}})");
  auto r = run(2, kTrainWorker, {"--deepspeed_config", cfg, "--steps", "10"});
  const std::string& out = r.at(0).output;
  EXPECT_TRUE(std::regex_search(out, std::regex("\nall_reduce\n {20}848\\.0 B {13}10 {18}"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\nbroadcast\n {20}16\\.0 B {14}1 {19}"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\[Rank 0\] comm op: all_reduce \| time \(ms\): \d+\.\d\d \| msg size: 848\.0 B \| algbw \(Gbps\): \d+\.\d\d \| busbw \(Gbps\): \d+\.\d\d)")))
      << out;
  // Wall-clock lines at steps 5 and 10 only, from rank 0 only.
  std::regex global(R"(\[Rank 0\] time \(ms\) \| fwd: \d+\.\d\d \| bwd: \d+\.\d\d \| bwd_inner: \d+\.\d\d \| bwd_allreduce: \d+\.\d\d \| step: \d+\.\d\d)");
  EXPECT_EQ(std::distance(std::sregex_iterator(out.begin(), out.end(), global), std::sregex_iterator()), 2) << out;
  EXPECT_FALSE(contains(r.at(1).output, "time (ms)")) << r.at(1).output;
  EXPECT_FALSE(contains(r.at(1).output, "Comm. Op")) << r.at(1).output;
}

}  // namespace
