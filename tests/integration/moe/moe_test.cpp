// Expert parallelism on 4 CPU ranks over Gloo: the MoE layer split over expert-parallel groups
// of 1, 2 and 4 ranks gives each rank the outputs and gradients of the whole layer (top-1, -2
// and -4 gates, with and without dropped tokens).
#include <gtest/gtest.h>

#include "multiprocess.h"

namespace {

using deepspeed::testing::run_ranks;

const std::string kMoeWorker = DS_BINARY_DIR "/bin/ds_test_moe_worker";

void check(int64_t ep, int64_t k, const std::string& capacity_factor, bool drop) {
  const auto ranks = run_ranks(4, kMoeWorker,
                               {"--ep_size", std::to_string(ep), "--k", std::to_string(k), "--capacity_factor",
                                capacity_factor, "--drop_tokens", drop ? "true" : "false"});
  for (const auto& r : ranks) {
    ASSERT_EQ(r.exit_code, 0) << "rank " << r.rank << ":\n" << r.output;
    const auto at = r.output.find("max_diff ");
    ASSERT_NE(at, std::string::npos) << r.output;
    EXPECT_LT(std::stod(r.output.substr(at + 9)), 1e-5) << "rank " << r.rank << ":\n" << r.output;
  }
}

TEST(ExpertParallel, Top1OnGroupsOfOneTwoAndFour) {
  for (int64_t ep : {1, 2, 4}) check(ep, 1, "1.0", true);
}
TEST(ExpertParallel, Top2DroppingTokens) { check(2, 2, "0.5", true); }
TEST(ExpertParallel, Top2KeepingEveryToken) { check(4, 2, "1.0", false); }
TEST(ExpertParallel, Top4) { check(2, 4, "0.75", true); }

}  // namespace
