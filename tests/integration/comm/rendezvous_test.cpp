// The rendezvous keeps one deadline: a job whose WORLD_SIZE says 2 but where only one process
// starts fails after the timeout (not twice it), whichever rank it is, with an error that
// says how far the rendezvous got; DEEPSPEED_TIMEOUT that DeepSpeed would refuse fails every
// rank at once, naming the variable.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>

#include "gloo_ranks_test.h"
#include "multiprocess.h"

using deepspeed::testing::RankResult;
using deepspeed::testing::run_ranks;
using deepspeed::testing::RunOptions;

namespace {

const std::string kRendezvousWorker = DS_BINARY_DIR "/bin/ds_test_rendezvous_worker";

RankResult run_alone(std::map<std::string, std::string> env, const std::vector<std::string>& args) {
  RunOptions options;
  options.timeout = std::chrono::seconds(60);
  options.env = {{"DS_ACCELERATOR", "cpu"}};
  options.env.insert(env.begin(), env.end());
  return run_ranks(1, kRendezvousWorker, args, options).at(0);
}

// The worker's own measure of init_distributed, in ms (-1 when it printed none).
long long failed_after_ms(const std::string& output) {
  const std::string marker = "rendezvous failed after ";
  const auto at = output.find(marker);
  if (at == std::string::npos) return -1;
  return std::stoll(output.substr(at + marker.size()));
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

// Rank 0 hosts the store and waits for a rank 1 that never comes.
TEST(Rendezvous, MissingRankFailsRankZeroWithinOneTimeout) {
  const auto r = run_alone({{"WORLD_SIZE", "2"}}, {"--timeout_ms", "2000"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const long long ms = failed_after_ms(r.output);
  EXPECT_GE(ms, 2000) << r.output;
  EXPECT_LT(ms, 3000) << r.output;
  EXPECT_TRUE(mentions(r.output, "error: rank 0: the rendezvous at 127.0.0.1:")) << r.output;
  EXPECT_TRUE(mentions(r.output, "did not complete within 2 s: not all 2 ranks (WORLD_SIZE) joined: only 1 of them "
                                 "did, this one included"))
      << r.output;
  EXPECT_FALSE(mentions(r.output, "frame #0")) << "LibTorch's C++ backtrace reached the user:\n" << r.output;
}

// Rank 1 finds no store to connect to.
TEST(Rendezvous, MissingRankFailsRankOneWithinOneTimeout) {
  const auto r = run_alone({{"WORLD_SIZE", "2"}, {"LOCAL_SIZE", "2"}, {"RANK", "1"}, {"LOCAL_RANK", "1"}}, {"--timeout_ms", "2000"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const long long ms = failed_after_ms(r.output);
  EXPECT_GE(ms, 2000) << r.output;
  EXPECT_LT(ms, 3000) << r.output;
  EXPECT_TRUE(mentions(r.output, "error: rank 1: the rendezvous at 127.0.0.1:")) << r.output;
  EXPECT_TRUE(mentions(r.output, "did not complete within 2 s: not all 2 ranks (WORLD_SIZE) joined: rank 0's store at "
                                 "127.0.0.1:"))
      << r.output;
  EXPECT_TRUE(mentions(r.output, "could not be reached")) << r.output;
}

// DEEPSPEED_TIMEOUT is read as DeepSpeed reads it; anything else fails at once on every rank
// (before any rank waits for another), naming the variable and its value.
TEST(Rendezvous, BadDeepSpeedTimeoutFailsAtOnceNamingIt) {
  for (const std::string value : {"0.5", "0", "-1", "2x"}) {
    const auto r = run_alone({{"WORLD_SIZE", "2"}, {"DEEPSPEED_TIMEOUT", value}}, {});
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(mentions(r.output, "error: DEEPSPEED_TIMEOUT='" + value + "': expected")) << r.output;
    const long long ms = failed_after_ms(r.output);
    EXPECT_GE(ms, 0) << r.output;
    EXPECT_LT(ms, 1000) << r.output;
  }
}

// Both ranks there: the rendezvous completes and the group works.
using RendezvousGloo = deepspeed::testing::GlooRanksTest;
TEST_F(RendezvousGloo, TwoRanksMeet) {
  RunOptions options;
  options.timeout = std::chrono::seconds(60);
  options.env = {{"DS_ACCELERATOR", "cpu"}, {"DEEPSPEED_RUN_ID", "job-a"}};
  for (const auto& r : run_ranks(2, kRendezvousWorker, {"--timeout_ms", "30000"}, options)) {
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(mentions(r.output, "all_reduce ok")) << r.output;
  }
}
