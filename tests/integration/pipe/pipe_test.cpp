// Pipeline parallelism on 2 and 4 CPU ranks over Gloo, each run against the same model trained
// without pipelining in the worker (every layer, the whole global batch, torch's Adam): the
// same step losses and final weights (rtol 1e-5), for pipe 2, pipe 4 and pipe 2 x data 2, with
// gradient accumulation 1, 4 and 8; tied weights stay identical on the stages that hold them;
// the clipping norm equals the one-rank norm; ZeRO-1 gives the same numbers; a checkpoint saved
// with 2 stages loads with 1 and 4 stages, and with 2 data-parallel ranks, and continues with the
// same losses; a stage that dies ends
// the job with an error on the other ranks, without a hang.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gloo_ranks_test.h"
#include "multiprocess.h"

namespace pipe_integration {

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_pipe_worker";

struct RankResult {
  torch::Tensor losses, reference_losses, norms, reference_norms;
  double weight_error = 0.0;  // in units of the tolerance: <= 1 passes
  torch::Tensor tied;
  torch::Tensor eval;  // {eval_batch loss, the reference's}
};

std::vector<RankResult> run(int world, std::vector<std::string> args, const TempDir& dir, const std::string& name) {
  args.insert(args.end(), {"--out", dir.file(name)});
  const auto ranks = run_ranks(world, kWorker, args);
  for (const auto& r : ranks) {
    EXPECT_FALSE(r.timed_out) << name << " rank " << r.rank << " hung:\n" << r.output;
    EXPECT_EQ(r.exit_code, 0) << name << " rank " << r.rank << ":\n" << r.output;
  }
  std::vector<RankResult> out;
  if (::testing::Test::HasFailure()) return out;
  for (int k = 0; k < world; ++k) {
    std::vector<torch::Tensor> t;
    torch::load(t, dir.file(name) + ".rank" + std::to_string(k) + ".pt");
    out.push_back({t[0], t[1], t[2], t[3], t[4].item<double>(), t[5], t[6]});
  }
  return out;
}

void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-7)) << what << "\n" << got << "\n" << want;
}

void expect_equivalent(const std::vector<RankResult>& ranks, const std::string& what) {
  for (size_t k = 0; k < ranks.size(); ++k) {
    const auto& r = ranks[k];
    const std::string rank = what + ", rank " + std::to_string(k);
    expect_close(r.losses, r.reference_losses, rank + ": losses");
    EXPECT_LE(r.weight_error, 1.0) << rank << ": final weights differ from the reference by " << r.weight_error
                                   << " tolerances";
    // Every rank reports the same mean loss (broadcast from the last stage).
    EXPECT_TRUE(torch::equal(r.losses, ranks[0].losses)) << rank;
    expect_close(r.eval.narrow(0, 0, 1), r.eval.narrow(0, 1, 1), rank + ": eval_batch loss");
    EXPECT_TRUE(torch::equal(r.eval, ranks[0].eval)) << rank << ": eval_batch loss on every stage";
  }
}

using PipeEquivalence = deepspeed::testing::GlooRanksTest;

struct Shape {
  int world, stages, gas;
};

TEST_F(PipeEquivalence, LossesAndWeightsEqualTheModelWithoutPipelining) {
  TempDir dir;
  for (const Shape s : {Shape{2, 2, 1}, Shape{2, 2, 4}, Shape{2, 2, 8}, Shape{4, 4, 1}, Shape{4, 4, 4}, Shape{4, 2, 1},
                        Shape{4, 2, 8}}) {
    const std::string what = "pipe " + std::to_string(s.stages) + " x data " + std::to_string(s.world / s.stages) +
                             ", accumulation " + std::to_string(s.gas);
    const auto ranks = run(s.world, {"--stages", std::to_string(s.stages), "--gas", std::to_string(s.gas)}, dir,
                           "eq" + std::to_string(s.world) + std::to_string(s.stages) + std::to_string(s.gas));
    ASSERT_EQ(ranks.size(), static_cast<size_t>(s.world)) << what;
    expect_equivalent(ranks, what);
  }
}

TEST_F(PipeEquivalence, TiedWeightsStayIdenticalAndClippingNormIsTheOneRankNorm) {
  TempDir dir;
  for (const Shape s : {Shape{2, 2, 4}, Shape{4, 4, 2}, Shape{4, 2, 4}}) {
    const std::string what = "tied, clipped, pipe " + std::to_string(s.stages) + " x data " +
                             std::to_string(s.world / s.stages) + ", accumulation " + std::to_string(s.gas);
    // A clip of 0.05 is below the norms here: every step is clipped.
    const auto ranks = run(s.world,
                           {"--stages", std::to_string(s.stages), "--gas", std::to_string(s.gas), "--tied", "--clip",
                            "0.05"},
                           dir, "tied" + std::to_string(s.world) + std::to_string(s.stages));
    ASSERT_EQ(ranks.size(), static_cast<size_t>(s.world)) << what;
    expect_equivalent(ranks, what);
    for (size_t k = 0; k < ranks.size(); ++k) {
      expect_close(ranks[k].norms, ranks[k].reference_norms, what + ", rank " + std::to_string(k) + ": norms");
      EXPECT_GT(ranks[k].reference_norms.min().item<double>(), 0.05) << what << ": the clip did not bite";
    }
    // The first and the last stage hold the tied weight: bit-identical on both.
    const auto& first = ranks.front().tied;
    const auto& last = ranks.back().tied;
    ASSERT_GT(first.numel(), 0) << what;
    ASSERT_GT(last.numel(), 0) << what;
    EXPECT_TRUE(torch::equal(first, last)) << what << ": tied weights differ by "
                                           << (first - last).abs().max().item<double>();
  }
}

TEST_F(PipeEquivalence, ZeroStageOneAndSgdGiveTheSameNumbers) {
  TempDir dir;
  const auto zero1 = run(4, {"--stages", "2", "--gas", "4", "--zero", "1", "--tied", "--clip", "0.05"}, dir, "zero1");
  ASSERT_EQ(zero1.size(), 4u);
  expect_equivalent(zero1, "ZeRO-1, pipe 2 x data 2");
  const auto sgd = run(2, {"--stages", "2", "--gas", "2", "--optimizer", "SGD", "--partition", "uniform"}, dir, "sgd");
  ASSERT_EQ(sgd.size(), 2u);
  expect_equivalent(sgd, "SGD, uniform partition");
}

TEST_F(PipeEquivalence, TensorParallelRanksSendPartitionedActivationsAndGradients) {
  TempDir dir;
  // pipe 2 x model 2: the tensor ranks hold the same (replicated) layers, and with the config's
  // default pipe_partitioned / grad_partitioned each sends half of every activation and gradient.
  const auto ranks = run(4, {"--stages", "2", "--tensor", "2", "--gas", "4", "--tied", "--clip", "0.05"}, dir, "tp");
  ASSERT_EQ(ranks.size(), 4u);
  expect_equivalent(ranks, "pipe 2 x model 2");
  for (size_t k = 0; k < ranks.size(); ++k) expect_close(ranks[k].norms, ranks[k].reference_norms, "pipe 2 x model 2 norms");
}

TEST_F(PipeEquivalence, ActivationCheckpointingFromTheConfigKeepsTheNumbers) {
  TempDir dir;
  const auto ranks = run(2, {"--stages", "2", "--gas", "4", "--tied", "--checkpoint_interval", "2"}, dir, "ckpt");
  ASSERT_EQ(ranks.size(), 2u);
  expect_equivalent(ranks, "activation_checkpoint_interval 2");
}

TEST_F(PipeEquivalence, Bf16TrainsWithinItsPrecision) {
  TempDir dir;
  const auto ranks = run(4, {"--stages", "2", "--gas", "2", "--bf16", "--tied"}, dir, "bf16");
  ASSERT_EQ(ranks.size(), 4u);
  for (const auto& r : ranks) {
    EXPECT_TRUE(torch::allclose(r.losses, r.reference_losses, 3e-2, 1e-3)) << r.losses << "\n" << r.reference_losses;
    EXPECT_TRUE(torch::equal(r.losses, ranks[0].losses));
  }
}

TEST_F(PipeEquivalence, ZeroStageTwoIsRefused) {
  TempDir dir;
  const auto ranks = run_ranks(2, kWorker, {"--stages", "2", "--zero", "2", "--out", dir.file("z2")});
  for (const auto& r : ranks) {
    EXPECT_FALSE(r.timed_out) << r.output;
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism"), std::string::npos)
        << r.output;
  }
}

TEST_F(PipeEquivalence, APipelineSectionThatContradictsTheModuleIsAnErrorNamingTheKey) {
  TempDir dir;
  for (const auto& [config, key] : std::vector<std::pair<std::string, std::string>>{
           {R"({"pipeline": {"stages": 4}})", "pipeline.stages: 4 stages, but the PipelineModule has 2"},
           {R"({"pipeline": {"partition": "uniform"}})", "pipeline.partition"},
           {R"({"pipeline": {"use_reentrant": false}})", "pipeline.use_reentrant"}}) {
    const auto ranks = run_ranks(2, kWorker, {"--stages", "2", "--config", config, "--out", dir.file("bad")});
    for (const auto& r : ranks) {
      EXPECT_FALSE(r.timed_out) << r.output;
      EXPECT_NE(r.exit_code, 0) << r.output;
      EXPECT_NE(r.output.find(key), std::string::npos) << config << "\n" << r.output;
    }
  }
}

using PipeCheckpoint = deepspeed::testing::GlooRanksTest;

TEST_F(PipeCheckpoint, SavedWithTwoStagesLoadsWithOneAndFourStagesAndTwoDataRanksAndContinues) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt");
  // 2 stages, 2 steps, saved, then 3 more steps.
  const auto saved = run(2, {"--stages", "2", "--gas", "2", "--tied", "--steps", "5", "--save", ckpt, "--save_after", "2"},
                         dir, "save");
  ASSERT_EQ(saved.size(), 2u);
  expect_equivalent(saved, "saving run");
  const auto continued = saved[0].losses.narrow(0, 2, 3);
  // The same global batch of 4: 1, 4 and 2 stages on one data-parallel rank, and 2 stages on
  // two data-parallel ranks with half the accumulation.
  for (const Shape s : {Shape{1, 1, 2}, Shape{4, 4, 2}, Shape{2, 2, 2}, Shape{4, 2, 1}}) {
    const std::string what = "loaded with " + std::to_string(s.stages) + " stages x data " +
                             std::to_string(s.world / s.stages);
    const auto loaded = run(s.world, {"--stages", std::to_string(s.stages), "--gas", std::to_string(s.gas), "--tied",
                                      "--steps", "3", "--load", ckpt},
                            dir, "load" + std::to_string(s.world) + std::to_string(s.stages));
    ASSERT_EQ(loaded.size(), static_cast<size_t>(s.world)) << what;
    expect_equivalent(loaded, what);
    expect_close(loaded[0].losses, continued, what + ": losses after loading");
  }
}

using PipeFailure = deepspeed::testing::GlooRanksTest;

TEST_F(PipeFailure, AStageThatDiesEndsTheJobWithAnErrorNotAHang) {
  TempDir dir;
  deepspeed::testing::RunOptions options;
  options.timeout = std::chrono::seconds(90);
  options.failure_grace = std::chrono::seconds(60);  // the others must stop on their own
  const auto ranks = run_ranks(4, kWorker, {"--stages", "4", "--gas", "4", "--die_at", "1", "--die_rank", "2", "--out", dir.file("die")},
                               options);
  // Every rank exits non-zero by itself, long before the grace period ends: the one that
  // died, and its peers with a communication error.
  for (const auto& r : ranks) {
    EXPECT_FALSE(r.timed_out) << "rank " << r.rank << " hung:\n" << r.output;
    EXPECT_NE(r.exit_code, 0) << "rank " << r.rank << ":\n" << r.output;
    EXPECT_NE(r.exit_code, -1) << "rank " << r.rank << " had to be killed:\n" << r.output;
  }
}

}  // namespace pipe_integration
