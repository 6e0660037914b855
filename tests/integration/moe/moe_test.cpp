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
// over 2 or 4 ranks gives the losses and norms of keeping them whole on every rank, at ZeRO
// stage 0 and under ZeRO 1 and 2 (each expert group partitioned over its expert-data-parallel
// group).
void check_expert_parallel_sizes(int64_t zero_stage) {
  std::vector<double> base_losses, base_norms;
  for (int64_t ep : {1, 2, 4}) {
    const auto ranks = run_ranks(4, kTrainWorker, {"--ep_size", std::to_string(ep), "--zero_stage", std::to_string(zero_stage)});
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
  if (zero_stage == 0) return;
  // And ZeRO gives stage 0's losses.
  const auto stage0 = run_ranks(4, kTrainWorker, {"--ep_size", "2"});
  const auto losses = values_after(stage0[0].output, "losses");
  ASSERT_EQ(losses.size(), 4u) << stage0[0].output;
  for (size_t i = 0; i < losses.size(); ++i) {
    EXPECT_NEAR(losses[i], base_losses[i], 1e-5 * std::abs(base_losses[i])) << "stage " << zero_stage << " step " << i;
  }
}

TEST(ExpertParallel, EngineTrainsTheSameWhateverTheExpertParallelSize) { check_expert_parallel_sizes(0); }
TEST(ExpertParallel, ZeroStage1TrainsTheSameWhateverTheExpertParallelSize) { check_expert_parallel_sizes(1); }
TEST(ExpertParallel, ZeroStage2TrainsTheSameWhateverTheExpertParallelSize) { check_expert_parallel_sizes(2); }

// bf16 under ZeRO-2: the experts' fp32 masters and their bf16 weights stay in step with stage 0's.
TEST(ExpertParallel, Bf16ZeroStage2FollowsStage0) {
  std::vector<std::vector<double>> runs;
  for (const char* stage : {"0", "2"}) {
    const auto ranks = run_ranks(4, kTrainWorker, {"--ep_size", "2", "--zero_stage", stage, "--precision", "bf16"});
    for (const auto& r : ranks) ASSERT_EQ(r.exit_code, 0) << "stage " << stage << " rank " << r.rank << ":\n" << r.output;
    runs.push_back(values_after(ranks[0].output, "losses"));
    ASSERT_EQ(runs.back().size(), 4u) << ranks[0].output;
  }
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(runs[1][i], runs[0][i], 1e-2 * std::abs(runs[0][i])) << "step " << i;
}

// DeepSpeed's rules: no MoE at stage 3; under ZeRO the experts need optimizer groups of their own.
TEST(ExpertParallel, ZeroRefusalsAreSaidOnEveryRank) {
  const auto stage3 = run_ranks(4, kTrainWorker, {"--ep_size", "2", "--zero_stage", "3"});
  for (const auto& r : stage3) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("MoE layers are not supported with ZeRO stage 3"), std::string::npos) << r.output;
  }
  const auto mixed = run_ranks(4, kTrainWorker, {"--ep_size", "2", "--zero_stage", "2", "--no_split"});
  for (const auto& r : mixed) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("optimizer group 0 mixes MoE expert parameters with others"), std::string::npos) << r.output;
  }
}

std::vector<double> train_losses(const std::vector<std::string>& args, const std::string& what) {
  const auto ranks = run_ranks(4, kTrainWorker, args);
  for (const auto& r : ranks) {
    if (r.exit_code != 0) ADD_FAILURE() << what << " rank " << r.rank << ":\n" << r.output;
  }
  return values_after(ranks[0].output, "losses");
}

// DeepSpeed's MoE layout: one file per expert by its global number, one optimizer file per
// expert-parallel rank. A run saved with experts split over 2 ranks goes on from its checkpoint
// with them whole (ep 1), split the same way, or over 4 ranks, with the losses of the run that
// never stopped: the experts and their Adam state reach whichever rank holds them now.
void check_resume(const std::string& precision, double rtol, const std::string& zero_stage = "0",
                  const std::string& resume_stage = "0") {
  deepspeed::testing::TempDir dir;
  const auto full = train_losses({"--ep_size", "2", "--steps", "4", "--save_after", "2", "--save_dir", dir.path(),
                                  "--precision", precision, "--zero_stage", zero_stage},
                                 "uninterrupted run");
  ASSERT_EQ(full.size(), 4u);
  const auto tag = dir.path() + "/global_step2/";
  for (int e = 0; e < 4; ++e) {
    EXPECT_TRUE(std::filesystem::exists(tag + "layer_0_expert_" + std::to_string(e) + "_mp_rank_00_model_states.pt"));
  }
  EXPECT_TRUE(std::filesystem::exists(tag + "expp_rank_0_mp_rank_00_optim_states.pt"));
  EXPECT_TRUE(std::filesystem::exists(tag + "expp_rank_1_mp_rank_00_optim_states.pt"));
  EXPECT_FALSE(std::filesystem::exists(tag + "expp_rank_2_mp_rank_00_optim_states.pt"));
  for (int64_t ep : {1, 2, 4}) {
    const auto resumed = train_losses({"--ep_size", std::to_string(ep), "--steps", "4", "--load_dir", dir.path(),
                                       "--precision", precision, "--zero_stage", resume_stage},
                                      "ep " + std::to_string(ep));
    ASSERT_EQ(resumed.size(), 2u) << "ep " << ep;
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_NEAR(resumed[i], full[i + 2], rtol * std::abs(full[i + 2])) << "ep " << ep << " step " << i + 2;
    }
  }
}

TEST(ExpertParallel, CheckpointSavedWithTwoExpertGroupsResumesWithOneTwoAndFour) { check_resume("fp32", 1e-5); }

// bf16: the fp32 masters of the experts (FP16_Optimizer's fp32_groups_flat) move with them.
TEST(ExpertParallel, Bf16CheckpointResumesWithAnotherExpertParallelSize) { check_resume("bf16", 2e-2); }

// Under ZeRO the dense groups go to DeepSpeed's zero_pp_rank files and the experts' groups,
// whole, to the expp_rank files: the experts' fp32 masters and Adam state follow them to any
// expert-parallel size, and ZeRO-1 resumes what ZeRO-2 saved.
TEST(ExpertParallel, ZeroStage2CheckpointResumesWithOneTwoAndFour) { check_resume("fp32", 1e-5, "2", "2"); }
TEST(ExpertParallel, ZeroStage1ResumesAZeroStage2Checkpoint) { check_resume("fp32", 1e-5, "2", "1"); }
TEST(ExpertParallel, Bf16ZeroStage2CheckpointResumesWithAnotherExpertParallelSize) {
  check_resume("bf16", 2e-2, "2", "2");
}

TEST(ExpertParallel, MissingExpertFileIsNamedOnEveryRank) {
  deepspeed::testing::TempDir dir;
  train_losses({"--ep_size", "2", "--steps", "1", "--save_dir", dir.path()}, "save");
  const auto missing = dir.path() + "/global_step1/layer_0_expert_3_mp_rank_00_model_states.pt";
  ASSERT_TRUE(std::filesystem::remove(missing));
  const auto ranks = run_ranks(4, kTrainWorker, {"--ep_size", "4", "--steps", "2", "--load_dir", dir.path()});
  // Every rank stops; the one that holds expert 3 now (rank 3 with ep 4) names the file.
  for (const auto& r : ranks) EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(ranks[3].output.find("layer_0_expert_3_mp_rank_00_model_states.pt"), std::string::npos) << ranks[3].output;
}

}  // namespace
