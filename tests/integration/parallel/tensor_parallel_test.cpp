// Data x tensor parallelism on 4 CPU ranks over Gloo (2 data-parallel x 2 tensor-parallel),
// against the same model whole on one rank: the same step losses, the same gradient norm (the
// clipping norm summed over the model-parallel group, replicated parameters counted once), the
// same final weights, at ZeRO stages 0-3 and with gradient accumulation. Gradients averaged over
// the whole world instead of the data group would mix the tensor ranks' different rows of W1 and
// fail the weight comparison; ZeRO partitions over the data group only (each rank holds half of
// its model part's masters, not a quarter); checkpoint files carry the model-parallel rank and
// load into the same layout, continuing with the same losses.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "gloo_ranks_test.h"
#include "multiprocess.h"
#include "rank_results.h"

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

namespace {

const std::string kTensorParallelWorker = DS_BINARY_DIR "/bin/ds_test_tensor_parallel_worker";
// Parameter elements one tensor rank holds: l0 (6x6 + 6), w1 (4x6), b1 (4), w2 (3x4), b2 (3).
constexpr int64_t kLocalElements = 36 + 6 + 24 + 4 + 12 + 3;

std::string config(int stage, int gas) {
  return R"({"train_batch_size": 8, "gradient_accumulation_steps": )" + std::to_string(gas) +
         R"(, "steps_per_print": 100, "gradient_clipping": 0.3,
     "optimizer": {"type": "Adam", "params": {"lr": 0.02}}, "zero_optimization": {"stage": )" +
         std::to_string(stage) + "}}";
}

struct Result {
  torch::Tensor losses, norms, sizes;
  std::vector<torch::Tensor> params;  // l0_weight, l0_bias, w1, b1, w2, b2 (whole)
};

std::vector<Result> train(int world, int tp, const std::string& cfg, TempDir& dir, const std::string& name,
                          std::vector<std::string> extra = {}) {
  const std::string cfg_path = dir.file(name + ".json");
  write_file(cfg_path, cfg);
  std::vector<std::string> args{"--deepspeed_config", cfg_path, "--tensor_parallel", std::to_string(tp), "--out",
                                dir.file(name)};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<Result> out;
  if (!deepspeed::testing::expect_ranks_succeeded(run_ranks(world, kTensorParallelWorker, args), name)) return out;
  for (const auto& saved : deepspeed::testing::load_rank_results(dir.file(name), world)) {
    out.push_back(Result{saved[0], saved[1], saved.back(), {saved.begin() + 2, saved.end() - 1}});
  }
  return out;
}

void expect_same_training(const Result& run, const Result& reference, const std::string& what) {
  EXPECT_TRUE(torch::allclose(run.losses, reference.losses, 1e-5, 0)) << what << " losses\n"
                                                                        << run.losses << "\n" << reference.losses;
  EXPECT_TRUE(torch::allclose(run.norms, reference.norms, 1e-5, 0)) << what << " gradient norms\n"
                                                                      << run.norms << "\n" << reference.norms;
  ASSERT_EQ(run.params.size(), reference.params.size());
  for (size_t i = 0; i < run.params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(run.params[i], reference.params[i], 1e-5, 1e-6)) << what << ": parameter " << i;
  }
}

}  // namespace

class TensorParallel : public deepspeed::testing::GlooRanksTest,
                       public ::testing::WithParamInterface<std::tuple<int, int>> {};

TEST_P(TensorParallel, TwoDataByTwoTensorRanksTrainAsOneRank) {
  const auto [stage, gas] = GetParam();
  TempDir dir;
  const auto reference = train(1, 1, config(0, gas), dir, "reference");
  ASSERT_EQ(reference.size(), 1u);
  // Clipping is on for every step: the norm matters.
  EXPECT_GT(reference[0].norms.min().item<double>(), 0.3);
  const auto runs = train(4, 2, config(stage, gas), dir, "split");
  ASSERT_EQ(runs.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    expect_same_training(runs[r], reference[0], "stage " + std::to_string(stage) + " rank " + std::to_string(r));
    EXPECT_EQ(runs[r].sizes[2].item<int64_t>(), 2) << "dp_world_size";
    EXPECT_EQ(runs[r].sizes[3].item<int64_t>(), 2) << "mp_world_size";
    const int64_t masters = runs[r].sizes[0].item<int64_t>() / 4;  // fp32 elements
    if (stage > 0) {
      // This rank's part of its tensor rank's parameters: half (2 data ranks), padding aside.
      EXPECT_GE(masters, (kLocalElements + 1) / 2) << "rank " << r;
      EXPECT_LT(masters, kLocalElements) << "rank " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, TensorParallel,
                         ::testing::Values(std::make_tuple(0, 1), std::make_tuple(1, 1), std::make_tuple(2, 1),
                                           std::make_tuple(3, 1), std::make_tuple(0, 2), std::make_tuple(2, 2)),
                         [](const auto& info) {
                           return "Stage" + std::to_string(std::get<0>(info.param)) + "Gas" +
                                  std::to_string(std::get<1>(info.param));
                         });

using TensorParallelCheckpoint = deepspeed::testing::GlooRanksTest;

TEST_F(TensorParallelCheckpoint, FilesCarryTheModelParallelRankAndResumeTheSameLayout) {
  TempDir dir;
  const auto straight = train(4, 2, config(1, 1), dir, "straight");
  ASSERT_EQ(straight.size(), 4u);
  const std::string ckpt = dir.file("ckpt");
  train(4, 2, config(1, 1), dir, "first", {"--steps", "3", "--save_dir", ckpt, "--save_after", "3"});
  ASSERT_FALSE(::testing::Test::HasFailure());
  const auto tag = std::filesystem::path(ckpt) / "global_step3";
  for (const char* f : {"mp_rank_00_model_states.pt", "mp_rank_01_model_states.pt",
                        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt",
                        "zero_pp_rank_0_mp_rank_01_optim_states.pt", "zero_pp_rank_1_mp_rank_01_optim_states.pt"}) {
    EXPECT_TRUE(std::filesystem::exists(tag / f)) << f;
  }
  const auto resumed = train(4, 2, config(1, 1), dir, "resumed", {"--load_dir", ckpt});
  ASSERT_EQ(resumed.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_TRUE(torch::allclose(resumed[r].losses, straight[r].losses.narrow(0, 3, 3), 1e-6, 0))
        << "rank " << r << "\n" << resumed[r].losses << "\n" << straight[r].losses;
    for (size_t i = 0; i < straight[r].params.size(); ++i) {
      EXPECT_TRUE(torch::allclose(resumed[r].params[i], straight[r].params[i], 1e-6, 1e-7)) << "parameter " << i;
    }
  }
}
