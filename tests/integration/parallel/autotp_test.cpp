// AutoTP training on CPU ranks over Gloo: a plain model of tensor_parallel::Linear layers with
// DeepSpeed's module names, split by "tensor_parallel": {"autotp_size": N} at initialize, trains
// as the unsplit model on one rank: the same step losses (rtol 1e-5), the same gradient norms
// (which sum every gradient element) and the same final weights, for tp 2, tp 2 x dp 2 and tp 4
// at ZeRO stages 0-2. A model with names the default rules do not know trains the same through
// partition_config; a torch::nn::Linear a spec selects and a size that does not divide are
// errors naming the layer.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "comms_summary.h"
#include "gloo_ranks_test.h"
#include "multiprocess.h"
#include "rank_results.h"

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

namespace {

const std::string kAutoTpWorker = DS_BINARY_DIR "/bin/ds_test_autotp_worker";

std::string autotp_config(int stage, int tp, const std::string& partition_config = "", const std::string& top_extra = "") {
  std::string tensor_parallel = R"("tensor_parallel": {"autotp_size": )" + std::to_string(tp);
  if (!partition_config.empty()) tensor_parallel += R"(, "partition_config": )" + partition_config;
  tensor_parallel += "}";
  return "{" + top_extra + R"("train_batch_size": 8, "steps_per_print": 100, "gradient_clipping": 0.05,
     "optimizer": {"type": "Adam", "params": {"lr": 0.01}}, "zero_optimization": {"stage": )" +
         std::to_string(stage) + "}, " + tensor_parallel + "}";
}

struct AutoTpRun {
  std::vector<deepspeed::testing::RankResult> ranks;
  std::vector<std::vector<torch::Tensor>> saved;  // per rank: losses, norms, parameters..., sizes
};

AutoTpRun autotp_train(int world, const std::string& cfg, TempDir& dir, const std::string& name, const std::string& model = "llama",
                       const std::vector<std::string>& extra = {}) {
  const std::string cfg_path = dir.file(name + ".json");
  write_file(cfg_path, cfg);
  AutoTpRun run;
  std::vector<std::string> args{"--deepspeed_config", cfg_path, "--model", model, "--out", dir.file(name)};
  args.insert(args.end(), extra.begin(), extra.end());
  run.ranks = run_ranks(world, kAutoTpWorker, args);
  for (const auto& r : run.ranks) {
    if (r.exit_code != 0 || r.timed_out) return run;
  }
  run.saved = deepspeed::testing::load_rank_results(dir.file(name), world);
  return run;
}

void expect_ok(const AutoTpRun& run, const std::string& what) {
  deepspeed::testing::expect_ranks_succeeded(run.ranks, what);
}

void expect_same_autotp_training(const AutoTpRun& run, const AutoTpRun& reference, const std::string& what) {
  ASSERT_EQ(reference.saved.size(), 1u);
  const auto& ref = reference.saved[0];
  for (size_t r = 0; r < run.saved.size(); ++r) {
    const auto& got = run.saved[r];
    ASSERT_EQ(got.size(), ref.size()) << what;
    EXPECT_TRUE(torch::allclose(got[0], ref[0], 1e-5, 0)) << what << " rank " << r << " losses\n"
                                                           << got[0] << "\n" << ref[0];
    EXPECT_TRUE(torch::allclose(got[1], ref[1], 1e-5, 0)) << what << " rank " << r << " gradient norms\n"
                                                           << got[1] << "\n" << ref[1];
    for (size_t i = 2; i + 1 < got.size(); ++i) {
      // fp32 sums in another order: within 1e-5 of the tensor's largest element.
      const double atol = 1e-5 * ref[i].abs().max().item<double>() + 1e-6;
      EXPECT_TRUE(torch::allclose(got[i], ref[i], 1e-5, atol)) << what << " rank " << r << " parameter " << i << ": largest difference "
                                                             << (got[i] - ref[i]).abs().max().item<double>() << " of "
                                                             << ref[i].abs().max().item<double>();
    }
  }
}

std::string all_output(const AutoTpRun& run) {
  std::string out;
  for (const auto& r : run.ranks) out += r.output;
  return out;
}

}  // namespace

class AutoTp : public deepspeed::testing::GlooRanksTest,
               public ::testing::WithParamInterface<std::tuple<int, int, int>> {};

TEST_P(AutoTp, SplitModelTrainsAsTheWholeModelOnOneRank) {
  const auto [world, tp, stage] = GetParam();
  TempDir dir;
  const auto reference = autotp_train(1, autotp_config(0, 0), dir, "reference");
  expect_ok(reference, "reference");
  ASSERT_FALSE(HasFailure());
  // Clipping acts on every step: the norm (over every gradient element) matters.
  EXPECT_GT(reference.saved[0][1].min().item<double>(), 0.05);
  const auto run = autotp_train(world, autotp_config(stage, tp), dir, "split");
  expect_ok(run, "split");
  ASSERT_FALSE(HasFailure());
  expect_same_autotp_training(run, reference, "world " + std::to_string(world) + " tp " + std::to_string(tp));
  for (const auto& saved : run.saved) {
    EXPECT_EQ(saved.back()[0].item<int64_t>(), world / tp) << "dp_world_size";
    EXPECT_EQ(saved.back()[1].item<int64_t>(), tp) << "mp_world_size";
    // Per block q, k, v, up and gate column-parallel, o and down row-parallel; lm_head not.
    EXPECT_EQ(saved.back()[2].item<int64_t>(), 10) << "column-parallel layers";
    EXPECT_EQ(saved.back()[3].item<int64_t>(), 4) << "row-parallel layers";
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, AutoTp,
                         ::testing::Values(std::make_tuple(2, 2, 0), std::make_tuple(2, 2, 1), std::make_tuple(2, 2, 2),
                                           std::make_tuple(4, 2, 1),
                                           std::make_tuple(4, 2, 2), std::make_tuple(4, 4, 0),
                                           std::make_tuple(4, 2, 0)),
                         [](const auto& info) {
                           return "World" + std::to_string(std::get<0>(info.param)) + "Tp" +
                                  std::to_string(std::get<1>(info.param)) + "Stage" +
                                  std::to_string(std::get<2>(info.param));
                         });

using AutoTpPartitionConfig = deepspeed::testing::GlooRanksTest;

TEST_F(AutoTpPartitionConfig, UnknownNamesSplitThroughTheUsersLayerSpecs) {
  TempDir dir;
  const auto reference = autotp_train(1, autotp_config(0, 0), dir, "reference", "custom");
  expect_ok(reference, "reference");
  const std::string specs = R"({"layer_specs": [
      {"patterns": [".*\\.shrink\\.weight$", ".*\\.o_proj\\.weight$"], "partition_type": "row"},
      {"patterns": [".*\\.(gate_)?expand\\.weight$", ".*\\.[qkv]_proj\\.weight$"], "partition_type": "column"}]})";
  const auto run = autotp_train(2, autotp_config(1, 2, specs), dir, "split", "custom");
  expect_ok(run, "split");
  ASSERT_FALSE(HasFailure());
  expect_same_autotp_training(run, reference, "partition_config");
  for (const auto& saved : run.saved) {
    EXPECT_EQ(saved.back()[2].item<int64_t>(), 10) << "column-parallel layers";
    EXPECT_EQ(saved.back()[3].item<int64_t>(), 4) << "row-parallel layers";
  }
}

TEST_F(AutoTpPartitionConfig, ATorchLinearASpecSelectsIsAnErrorNamingIt) {
  TempDir dir;
  const auto run = autotp_train(2, autotp_config(0, 2, R"({"layer_specs": [{"patterns": ["lm_head\\.weight$"], "partition_type": "column"}]})"),
                         dir, "torch_linear");
  for (const auto& r : run.ranks) EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(all_output(run).find("AutoTP layer lm_head is a torch::nn::Linear"), std::string::npos) << all_output(run);
}

TEST_F(AutoTpPartitionConfig, ASizeThatDoesNotDivideIsAnErrorNamingTheLayer) {
  TempDir dir;
  // 3 tensor ranks cannot split the 8 output features of q_proj.
  const auto run = autotp_train(3, autotp_config(0, 3), dir, "indivisible");
  for (const auto& r : run.ranks) EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(all_output(run).find("AutoTP layer layers_0.self_attn.q_proj weight: dimension 0 of size 8 is not "
                                 "divisible by the tensor-parallel size 3"),
            std::string::npos)
      << all_output(run);
}

TEST_F(AutoTpPartitionConfig, StrictModeRefusesALinearLayerNoSpecMatches) {
  TempDir dir;
  const auto run = autotp_train(2, autotp_config(0, 2, R"({"strict_mode": true, "use_default_specs": false, "layer_specs": [
      {"patterns": [".*_proj\\.weight$"], "partition_type": "column"}]})"),
                         dir, "strict");
  for (const auto& r : run.ranks) EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(all_output(run).find("No matching spec for lm_head.weight"), std::string::npos) << all_output(run);
}

// Checkpoints across tensor-parallel degrees: tp 2 x dp 2 trains two steps and saves; tp 1 x dp 4
// and tp 4 x dp 1 load it and train the last two steps with the losses, gradient norms and final
// weights of the uninterrupted run on one rank.
class AutoTpCheckpoint : public deepspeed::testing::GlooRanksTest, public ::testing::WithParamInterface<int> {};

TEST_P(AutoTpCheckpoint, SavedOnTwoTensorRanksContinuesOnOneAndFour) {
  const int stage = GetParam();
  TempDir dir;
  const auto reference = autotp_train(1, autotp_config(0, 0), dir, "reference");
  expect_ok(reference, "reference");
  const std::string ckpt = dir.file("ckpt");
  const auto saved = autotp_train(4, autotp_config(stage, 2), dir, "saved", "llama",
                                  {"--last_step", "2", "--save", ckpt});
  expect_ok(saved, "tp 2 x dp 2, saving");
  ASSERT_FALSE(HasFailure());
  const auto tag = std::filesystem::path(ckpt) / "global_step2";
  for (const char* f : {"mp_rank_00_model_states.pt", "mp_rank_01_model_states.pt"}) {
    EXPECT_TRUE(std::filesystem::exists(tag / f)) << f;
  }
  EXPECT_FALSE(std::filesystem::exists(tag / "mp_rank_02_model_states.pt"));
  if (stage > 0) {
    EXPECT_TRUE(std::filesystem::exists(tag / "zero_pp_rank_1_mp_rank_01_optim_states.pt"));
  }
  const auto& ref = reference.saved[0];
  for (const int tp : {1, 4}) {
    const std::string what = "tp 2 x dp 2 -> tp " + std::to_string(tp) + " x dp " + std::to_string(4 / tp);
    const auto run = autotp_train(4, autotp_config(stage, tp), dir, "tp" + std::to_string(tp), "llama",
                                  {"--first_step", "2", "--load", ckpt});
    expect_ok(run, what);
    ASSERT_FALSE(HasFailure()) << all_output(run);
    for (size_t r = 0; r < run.saved.size(); ++r) {
      const auto& got = run.saved[r];
      ASSERT_EQ(got.size(), ref.size()) << what;
      EXPECT_TRUE(torch::allclose(got[0], ref[0].narrow(0, 2, 2), 1e-5, 0)) << what << " rank " << r << " losses\n"
                                                                            << got[0] << "\n" << ref[0];
      EXPECT_TRUE(torch::allclose(got[1], ref[1].narrow(0, 2, 2), 1e-5, 0)) << what << " rank " << r << " norms\n"
                                                                            << got[1] << "\n" << ref[1];
      for (size_t i = 2; i + 1 < got.size(); ++i) {
        const double atol = 1e-5 * ref[i].abs().max().item<double>() + 1e-6;
        EXPECT_TRUE(torch::allclose(got[i], ref[i], 1e-5, atol)) << what << " rank " << r << " parameter " << i;
      }
      EXPECT_EQ(got.back()[1].item<int64_t>(), tp) << "mp_world_size";
    }
    EXPECT_NE(all_output(run).find("Loading a checkpoint saved on 2 tensor-parallel ranks onto " + std::to_string(tp)),
              std::string::npos)
        << all_output(run);
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, AutoTpCheckpoint, ::testing::Values(0, 1, 2),
                         [](const auto& info) { return "Stage" + std::to_string(info.param); });

TEST_F(AutoTpPartitionConfig, ACheckpointThatDoesNotFitTheModelIsAnErrorNamingTheParameterAndTheFile) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt");
  const auto saved = autotp_train(2, autotp_config(0, 2), dir, "saved", "llama", {"--last_step", "1", "--save", ckpt});
  expect_ok(saved, "saving");
  ASSERT_FALSE(HasFailure());
  // A wider MLP on 4 tensor ranks: up_proj's 16 saved rows cut in 4 are not its 6 of 24.
  const auto run = autotp_train(4, autotp_config(0, 4), dir, "wider", "llama",
                                {"--first_step", "1", "--load", ckpt, "--mlp_hidden", "24"});
  for (const auto& r : run.ranks) EXPECT_NE(r.exit_code, 0);
  const auto out = all_output(run);
  EXPECT_NE(out.find("parameter 'layers_0.mlp.up_proj.weight' has shape [4, 8] once its 2 tensor-parallel parts are "
                     "put together and cut for this rank; this model's is [6, 8]"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("global_step1/mp_rank_{00..01}_model_states.pt"), std::string::npos) << out;
}

// AutoTP with the other parts of a training run. Activation checkpointing with
// partition_activations: each tensor rank keeps half of every block's saved input and gathers it
// for the recomputation; the training is the one-rank run's. bf16 (fp32 masters; fp16 has no
// matrix products on LibTorch 1.13's CPU, where initialize refuses it): within bf16's rounding of
// the one-rank bf16 run.
using AutoTpWith = deepspeed::testing::GlooRanksTest;

TEST_F(AutoTpWith, PartitionedActivationCheckpointsOverTheTensorGroup) {
  TempDir dir;
  const auto reference = autotp_train(1, autotp_config(0, 0), dir, "reference");
  expect_ok(reference, "reference");
  for (int stage : {0, 2}) {
    const auto run = autotp_train(
        4, autotp_config(stage, 2, "", R"("activation_checkpointing": {"partition_activations": true}, )"), dir,
        "checkpointed" + std::to_string(stage), "llama", {"--checkpoint_blocks"});
    expect_ok(run, "checkpointed");
    ASSERT_FALSE(HasFailure());
    EXPECT_NE(all_output(run).find("Partition Activations true"), std::string::npos) << all_output(run);
    expect_same_autotp_training(run, reference, "partition_activations, stage " + std::to_string(stage));
  }
}

TEST_F(AutoTpWith, Bf16TrainsAsTheOneRankBf16Run) {
  TempDir dir;
  const std::string bf16 = R"("bf16": {"enabled": true}, )";
  const auto reference = autotp_train(1, autotp_config(0, 0, "", bf16), dir, "reference");
  expect_ok(reference, "reference");
  for (const auto& [world, stage] : std::vector<std::pair<int, int>>{{2, 0}, {4, 1}}) {
    const auto run = autotp_train(world, autotp_config(stage, 2, "", bf16), dir, "bf16_" + std::to_string(world));
    expect_ok(run, "bf16");
    ASSERT_FALSE(HasFailure());
    const auto& ref = reference.saved[0];
    for (size_t r = 0; r < run.saved.size(); ++r) {
      const auto& got = run.saved[r];
      ASSERT_EQ(got.size(), ref.size());
      // bf16 keeps 8 bits of mantissa: sums in another order differ in the last places.
      EXPECT_TRUE(torch::allclose(got[0], ref[0], 2e-2, 0)) << "bf16 losses\n" << got[0] << "\n" << ref[0];
      // Adam moves a weight by about lr (0.01) per step whatever its gradient's size: a gradient
      // element near zero that rounds to the other sign moves its weight the other way.
      for (size_t i = 2; i + 1 < got.size(); ++i) {
        EXPECT_TRUE(torch::allclose(got[i], ref[i], 2e-2, 3e-2))
            << "bf16 parameter " << i << ": up to " << (got[i] - ref[i]).abs().max().item<double>();
      }
    }
  }
}

// bf16 at stage 0 keeps its fp32 masters flattened per group in the checkpoint
// (fp32_groups_flat): cut and put together per parameter when tp 2 x dp 2 continues on tp 1 x
// dp 4, within bf16's rounding of the uninterrupted one-rank run.
TEST_F(AutoTpWith, Bf16CheckpointContinuesOnOneTensorRank) {
  TempDir dir;
  const std::string bf16 = R"("bf16": {"enabled": true}, )";
  const auto reference = autotp_train(1, autotp_config(0, 0, "", bf16), dir, "reference");
  expect_ok(reference, "reference");
  const std::string ckpt = dir.file("ckpt");
  expect_ok(autotp_train(4, autotp_config(0, 2, "", bf16), dir, "saved", "llama", {"--last_step", "2", "--save", ckpt}),
            "saving");
  const auto run = autotp_train(4, autotp_config(0, 1, "", bf16), dir, "loaded", "llama", {"--first_step", "2", "--load", ckpt});
  expect_ok(run, "loading");
  ASSERT_FALSE(HasFailure());
  const auto& ref = reference.saved[0];
  EXPECT_TRUE(torch::allclose(run.saved[0][0], ref[0].narrow(0, 2, 2), 2e-2, 0)) << run.saved[0][0] << "\n" << ref[0];
  for (size_t i = 2; i + 1 < ref.size(); ++i) {
    EXPECT_TRUE(torch::allclose(run.saved[0][i], ref[i], 2e-2, 3e-2)) << "bf16 parameter " << i;
  }
}

// The comms logger over an AutoTP run on 2 tensor ranks: per block and step one all-reduce of the
// activations [micro, seq, dim] after each row-parallel layer in forward (o_proj, down_proj) and
// one of the input gradient before each column-parallel layer in backward (q, k, v, up and gate
// each: separate layers, as DeepSpeed's AutoTP all-reduces them): 2 + 5.
TEST_F(AutoTpWith, TheCommsLoggerCountsTheAnalyticAllReduces) {
  TempDir dir;
  const auto run = autotp_train(2, autotp_config(0, 2, "", R"("comms_logger": {"enabled": true, "prof_all": true}, )"),
                                dir, "logged");
  expect_ok(run, "logged");
  ASSERT_FALSE(HasFailure());
  const int64_t micro = 8, seq = 4, dim = 8, blocks = 2, steps = 4;
  EXPECT_EQ(micro * seq * dim * 4, 1024);
  const auto counts = deepspeed::testing::comms_counts(run.ranks[0].output);
  ASSERT_TRUE(counts.count("all_reduce")) << run.ranks[0].output;
  EXPECT_EQ(counts.at("all_reduce").at("1.0 KB"), steps * blocks * (2 + 5)) << run.ranks[0].output;
}
