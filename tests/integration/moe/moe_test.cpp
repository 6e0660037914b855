// Expert parallelism on 4 CPU ranks over Gloo: the MoE layer split over expert-parallel groups
// of 1, 2 and 4 ranks gives each rank the outputs and gradients of the whole layer (top-1, -2
// and -4 gates, with and without dropped tokens).
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>

#include "multiprocess.h"

namespace {

using deepspeed::testing::run_ranks;

const std::string kMoeWorker = DS_BINARY_DIR "/bin/ds_test_moe_worker";
const std::string kTrainWorker = DS_BINARY_DIR "/bin/ds_test_moe_train_worker";

std::vector<double> values_after(const std::string& output, const std::string& key) {
  const auto at = output.find(key + " ");
  if (at == std::string::npos) return {};
  std::istringstream line(output.substr(at + key.size() + 1, output.find('\n', at) - at - key.size() - 1));
  std::vector<double> out;
  for (std::string v; std::getline(line, v, ',');) out.push_back(std::strtod(v.c_str(), nullptr));
  return out;
}

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

// The engine trains a model with an MoE layer: the experts' gradients averaged over the
// expert-data-parallel group, the clipping norm counting each expert once. Splitting the experts
// over 2 or 4 ranks gives the losses and norms of keeping them whole on every rank.
TEST(ExpertParallel, EngineTrainsTheSameWhateverTheExpertParallelSize) {
  std::vector<double> base_losses, base_norms;
  for (int64_t ep : {1, 2, 4}) {
    const auto ranks = run_ranks(4, kTrainWorker, {"--ep_size", std::to_string(ep)});
    for (const auto& r : ranks) ASSERT_EQ(r.exit_code, 0) << "ep " << ep << " rank " << r.rank << ":\n" << r.output;
    const auto losses = values_after(ranks[0].output, "losses");
    const auto norms = values_after(ranks[0].output, "norms");
    ASSERT_EQ(losses.size(), 4u) << ranks[0].output;
    if (ep == 1) {
      base_losses = losses;
      base_norms = norms;
      EXPECT_GT(norms.front(), 0.2) << "the case should clip (gradient_clipping 0.2)";
      continue;
    }
    for (size_t i = 0; i < losses.size(); ++i) {
      EXPECT_NEAR(losses[i], base_losses[i], 1e-5 * std::abs(base_losses[i])) << "ep " << ep << " step " << i;
      EXPECT_NEAR(norms[i], base_norms[i], 1e-5 * std::abs(base_norms[i])) << "ep " << ep << " step " << i;
    }
  }
}

TEST(ExpertParallel, ZeroWithExpertsIsRefusedOnEveryRank) {
  const auto ranks = run_ranks(4, kTrainWorker, {"--ep_size", "2", "--zero_stage", "1"});
  for (const auto& r : ranks) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("ZeRO stage 1 with Mixture-of-Experts layers is not supported yet"), std::string::npos)
        << r.output;
  }
}

// Split experts cannot be saved yet: every rank refuses before anything is written; whole
// experts (ep_size 1) save as any model.
TEST(ExpertParallel, CheckpointOfSplitExpertsIsRefusedBeforeWriting) {
  deepspeed::testing::TempDir dir;
  const auto ranks = run_ranks(4, kTrainWorker, {"--ep_size", "2", "--steps", "1", "--save_dir", dir.path()});
  for (const auto& r : ranks) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("the model's MoE experts are split over 2 ranks (ep_size 2), which checkpoints cannot "
                            "hold yet"),
              std::string::npos)
        << r.output;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "nothing may be written";
  const auto whole = run_ranks(4, kTrainWorker, {"--ep_size", "1", "--steps", "1", "--save_dir", dir.path()});
  for (const auto& r : whole) EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/latest"));
}

}  // namespace
