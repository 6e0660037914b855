// Pipeline parallelism on 2 and 4 CPU ranks over Gloo, each run against the same model trained
// without pipelining in the worker (every layer, the whole global batch, torch's Adam): the
// same step losses and final weights (rtol 1e-5), for pipe 2, pipe 4 and pipe 2 x data 2, with
// gradient accumulation 1, 4 and 8; tied weights stay identical on the stages that hold them;
// the clipping norm equals the one-rank norm; ZeRO-1 gives the same numbers; a checkpoint saved
// with 2 stages loads with 1 and 4 stages, and with 2 data-parallel ranks, and continues with the
// same losses; a stage that dies ends
// the job with an error on the other ranks, without a hang.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gloo_ranks_test.h"
#include "multiprocess.h"
#include "processes.h"

namespace pipe_integration {

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_pipe_worker";
const std::string kLauncher = DS_BINARY_DIR "/bin/deepspeed";

struct RankResult {
  torch::Tensor losses, reference_losses, norms, reference_norms;
  double weight_error = 0.0;  // in units of the tolerance: <= 1 passes
  torch::Tensor tied;
  torch::Tensor eval;  // {eval_batch loss, the reference's}
  torch::Tensor eval_checks;  // --eval_variants: see pipe_worker.cpp
  torch::Tensor record;       // per step: skipped steps so far, loss scale, weight change
};

std::vector<RankResult> run(int world, std::vector<std::string> args, const TempDir& dir, const std::string& name,
                            const std::map<std::string, std::string>& env = {}) {
  args.insert(args.end(), {"--out", dir.file(name)});
  deepspeed::testing::RunOptions options;
  options.env = env;
  const auto ranks = run_ranks(world, kWorker, args, options);
  for (const auto& r : ranks) {
    EXPECT_FALSE(r.timed_out) << name << " rank " << r.rank << " hung:\n" << r.output;
    EXPECT_EQ(r.exit_code, 0) << name << " rank " << r.rank << ":\n" << r.output;
  }
  std::vector<RankResult> out;
  if (::testing::Test::HasFailure()) return out;
  for (int k = 0; k < world; ++k) {
    std::vector<torch::Tensor> t;
    torch::load(t, dir.file(name) + ".rank" + std::to_string(k) + ".pt");
    out.push_back({t[0], t[1], t[2], t[3], t[4].item<double>(), t[5], t[6], t[7], t[8]});
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

// A run on `world` ranks that must match the model without pipelining.
void run_equivalent(int world, const std::vector<std::string>& args, const TempDir& dir, const std::string& name,
                    const std::string& what) {
  const auto ranks = run(world, args, dir, name);
  ASSERT_EQ(ranks.size(), static_cast<size_t>(world)) << what;
  expect_equivalent(ranks, what);
}

using PipeEquivalence = deepspeed::testing::GlooRanksTest;

struct Shape {
  int world, stages, gas;
};

TEST_F(PipeEquivalence, LossesAndWeightsEqualTheModelWithoutPipelining) {
  TempDir dir;
  for (const Shape s : {Shape{2, 2, 1}, Shape{2, 2, 4}, Shape{2, 2, 8}, Shape{4, 4, 1}, Shape{4, 4, 4}, Shape{4, 4, 8},
                        Shape{4, 2, 1}, Shape{4, 2, 4}, Shape{4, 2, 8}}) {
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

// DeepSpeed's eval_batch arguments: bcast_loss=false leaves the loss on the last stage;
// reduce_output "none" gives each micro batch's loss there, return_logits the last micro
// batch's outputs; compute_loss=false averages the outputs instead of the losses.
TEST_F(PipeEquivalence, EvalBatchArgumentsActAsDeepSpeeds) {
  TempDir dir;
  for (const Shape s : {Shape{4, 2, 2}, Shape{4, 4, 3}}) {
    const std::string what = "eval_batch, pipe " + std::to_string(s.stages) + " x data " +
                             std::to_string(s.world / s.stages);
    const auto ranks = run(s.world, {"--stages", std::to_string(s.stages), "--gas", std::to_string(s.gas), "--steps",
                                     "1", "--eval_variants"},
                           dir, "evalv" + std::to_string(s.stages));
    ASSERT_EQ(ranks.size(), static_cast<size_t>(s.world)) << what;
    for (size_t k = 0; k < ranks.size(); ++k) {
      const auto c = ranks[k].eval_checks;
      const std::string rank = what + ", rank " + std::to_string(k);
      ASSERT_EQ(c.numel(), 5) << rank;
      EXPECT_EQ(c[0].item<double>(), 1.0) << rank << ": bcast_loss=false must leave the loss on the last stage only";
      EXPECT_LE(c[1].item<double>(), 1.0) << rank << ": the last stage's loss without bcast_loss";
      EXPECT_LE(c[2].item<double>(), 1.0) << rank << ": reduce_output \"none\"";
      EXPECT_LE(c[3].item<double>(), 1.0) << rank << ": return_logits";
      EXPECT_LE(c[4].item<double>(), 1.0) << rank << ": compute_loss=false";
    }
  }
}

// The rows of a csv_monitor file: (step, value).
std::vector<std::pair<int64_t, double>> csv_rows(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::pair<int64_t, double>> rows;
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    const auto comma = line.find(',');
    if (comma == std::string::npos) continue;
    rows.emplace_back(std::stoll(line.substr(0, comma)), std::stod(line.substr(comma + 1)));
  }
  return rows;
}

// DeepSpeed's pipeline events through the monitor, written by rank 0 (a first stage: the loss
// comes from the last): Train/Samples/train_loss per batch, lr after each step (here under a
// warm-up schedule), eval_loss.
TEST_F(PipeEquivalence, MonitorsGetDeepSpeedsTrainSamplesEvents) {
  TempDir dir;
  const std::string warmup =
      R"({"scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 0.01, "warmup_num_steps": 10}}})";
  const auto ranks = run(2, {"--stages", "2", "--gas", "2", "--steps", "3", "--monitor", dir.path(), "--config", warmup},
                         dir, "monitor");
  ASSERT_EQ(ranks.size(), 2u);
  const auto loss = csv_rows(dir.file("pipe/Train_Samples_train_loss.csv"));
  const auto lr = csv_rows(dir.file("pipe/Train_Samples_lr.csv"));
  const auto eval = csv_rows(dir.file("pipe/Train_Samples_eval_loss.csv"));
  ASSERT_EQ(loss.size(), 3u);
  ASSERT_EQ(lr.size(), 3u);
  ASSERT_EQ(eval.size(), 1u);
  const int64_t batch = 2 * 2;  // micro batch 2 x 2 micro batches x 1 data-parallel rank
  for (int64_t s = 0; s < 3; ++s) {
    EXPECT_EQ(loss[s].first, (s + 1) * batch);
    EXPECT_NEAR(loss[s].second, ranks[0].losses[s].item<double>(), 1e-6 * std::abs(loss[s].second));
    EXPECT_EQ(lr[s].first, (s + 1) * batch);
    // DeepSpeed's log warm-up: 0 after the first step, then rising.
    if (s > 0) {
      EXPECT_GT(lr[s].second, lr[s - 1].second) << "the warm-up raises the lr every step";
    }
    EXPECT_LT(lr[s].second, 0.01);
  }
  EXPECT_NEAR(eval[0].second, ranks[0].eval[0].item<double>(), 1e-6 * std::abs(eval[0].second));
  // No fp16: no loss scale.
  EXPECT_FALSE(std::filesystem::exists(dir.file("pipe/Train_Samples_loss_scale.csv")));
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
  run_equivalent(2, {"--stages", "2", "--gas", "4", "--tied", "--checkpoint_interval", "2"}, dir, "ckpt",
                 "activation_checkpoint_interval 2");
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

// bf16 through the pipeline against the same bf16 model on one stage: the same operations in
// the same dtypes; only the tied weight's gradient is summed in another order.
TEST_F(PipeEquivalence, Bf16PipelineFollowsTheUnpipelinedBf16Run) {
  TempDir dir;
  const auto one = run(1, {"--stages", "1", "--gas", "4", "--bf16", "--tied", "--steps", "4"}, dir, "bf16one");
  const auto two = run(2, {"--stages", "2", "--gas", "4", "--bf16", "--tied", "--steps", "4"}, dir, "bf16two");
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_TRUE(torch::allclose(two[0].losses, one[0].losses, 1e-2, 1e-4)) << two[0].losses << "\n" << one[0].losses;
}

// fp16's dynamic loss scale, with an overflow in one stage's gradients only (an inf put into
// one gradient on data-parallel rank 0's first stage): every rank skips that step, leaves its weights as
// they were and halves its scale; the steps before and after update every stage.
TEST_F(PipeEquivalence, Fp16OverflowOnOneStageSkipsTheStepOnEveryStage) {
  TempDir dir;
  for (const Shape s : {Shape{2, 2, 2}, Shape{4, 2, 2}}) {
    const std::string what = "fp16, pipe 2 x data " + std::to_string(s.world / s.stages);
    // Element-wise layers: LibTorch 1.13 has their fp16 kernels on the CPU.
    const auto ranks = run(s.world,
                           {"--stages", std::to_string(s.stages), "--gas", std::to_string(s.gas), "--fp16",
                            "--elementwise", "--overflow_at", "1", "--steps", "3", "--monitor",
                            dir.file("fp16monitor" + std::to_string(s.world))},
                           dir, "fp16" + std::to_string(s.world), {{"DS_ALLOW_CPU_FP16", "1"}});
    if (s.world == 2) {
      // Rank 0 (the first stage) writes the agreed loss scale after every step.
      const auto scale = csv_rows(dir.file("fp16monitor2/pipe/Train_Samples_loss_scale.csv"));
      ASSERT_EQ(scale.size(), 3u);
      EXPECT_EQ(scale[0].second, 256);
      EXPECT_EQ(scale[1].second, 128);
      EXPECT_EQ(scale[2].second, 128);
    }
    ASSERT_EQ(ranks.size(), static_cast<size_t>(s.world)) << what;
    for (size_t k = 0; k < ranks.size(); ++k) {
      const std::string rank = what + ", rank " + std::to_string(k);
      const auto r = ranks[k].record.reshape({-1, 3});
      ASSERT_EQ(r.size(0), 3) << rank;
      // {skipped steps so far, loss scale, weight change} after steps 0, 1 (overflow), 2.
      EXPECT_EQ(r[0][0].item<double>(), 0) << rank;
      EXPECT_EQ(r[0][1].item<double>(), 256) << rank;
      EXPECT_GT(r[0][2].item<double>(), 0) << rank;
      EXPECT_EQ(r[1][0].item<double>(), 1) << rank << ": the overflow step was not skipped here";
      EXPECT_EQ(r[1][1].item<double>(), 128) << rank;
      EXPECT_EQ(r[1][2].item<double>(), 0) << rank << ": weights changed in the skipped step";
      EXPECT_EQ(r[2][0].item<double>(), 1) << rank;
      EXPECT_EQ(r[2][1].item<double>(), 128) << rank;
      EXPECT_GT(r[2][2].item<double>(), 0) << rank;
      EXPECT_TRUE(torch::equal(ranks[k].losses, ranks[0].losses)) << rank;
    }
  }
}

// Tuples between stages (DeepSpeed's hidden states with masks): a float tensor with a
// gradient, an int mask and bool flags that travel forward only, and a float tensor that no
// parameter produced (its gradient goes back and stops there); the first stage reads a tuple.
TEST_F(PipeEquivalence, TupleActivationsWithIntAndBoolTensorsEqualTheModelWithoutPipelining) {
  TempDir dir;
  for (const Shape s : {Shape{2, 2, 4}, Shape{4, 4, 2}, Shape{4, 2, 2}}) {
    run_equivalent(s.world, {"--stages", std::to_string(s.stages), "--gas", std::to_string(s.gas), "--tuple"}, dir,
                   "tuple" + std::to_string(s.world) + std::to_string(s.stages),
                   "tuples, pipe " + std::to_string(s.stages) + " x data " + std::to_string(s.world / s.stages));
  }
  // Tuples through activation checkpointing's blocks.
  run_equivalent(2, {"--stages", "2", "--gas", "4", "--tuple", "--checkpoint_interval", "2"}, dir, "tuplec",
                 "tuples, activation_checkpoint_interval 2");
}

// Micro batches of two sizes: with the module's dynamic_shape the shape message goes before
// every send, tuples included; without it the sending stage stops with an error saying why.
TEST_F(PipeEquivalence, DynamicShapeSendsTheShapesWithEveryMicroBatch) {
  TempDir dir;
  run_equivalent(2, {"--stages", "2", "--gas", "4", "--vary_rows", "--dynamic_shape"}, dir, "dyn2",
                 "dynamic_shape, one tensor");
  run_equivalent(4, {"--stages", "4", "--gas", "3", "--vary_rows", "--dynamic_shape", "--tuple"}, dir, "dyn4",
                 "dynamic_shape, tuples");

  const auto fixed = run_ranks(2, kWorker, {"--stages", "2", "--gas", "4", "--vary_rows", "--out", dir.file("fixed")});
  ASSERT_EQ(fixed.size(), 2u);
  for (const auto& r : fixed) EXPECT_FALSE(r.timed_out) << r.output;
  EXPECT_NE(fixed[0].exit_code, 0);
  EXPECT_NE(fixed[0].output.find("changed shape or dtype between micro batches"), std::string::npos) << fixed[0].output;
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

// ZeRO-1 keeps each stage's fp32 masters and Adam moments cut over its data-parallel ranks
// (zero_pp_rank_D_mp_rank_XX_optim_states.pt per stage): loading into pipe 4 x data 1 and
// pipe 1 x data 4 puts every parameter's state back together by name and cuts it again.
TEST_F(PipeCheckpoint, ZeroOneSavedWithPipeTwoByDataTwoLoadsWithPipeFourAndWithDataFourAndContinues) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt");
  const auto saved = run(4, {"--stages", "2", "--gas", "2", "--zero", "1", "--tied", "--steps", "5", "--save", ckpt,
                             "--save_after", "2"},
                         dir, "zsave");
  ASSERT_EQ(saved.size(), 4u);
  expect_equivalent(saved, "ZeRO-1 saving run");
  const auto continued = saved[0].losses.narrow(0, 2, 3);
  // The same global batch of 8 samples (4 micro batches of 2).
  for (const Shape s : {Shape{4, 4, 4}, Shape{4, 1, 1}}) {
    const std::string what = "ZeRO-1 loaded with " + std::to_string(s.stages) + " stages x data " +
                             std::to_string(s.world / s.stages);
    const auto loaded = run(s.world, {"--stages", std::to_string(s.stages), "--gas", std::to_string(s.gas), "--zero",
                                      "1", "--tied", "--steps", "3", "--load", ckpt},
                            dir, "zload" + std::to_string(s.stages));
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

// The same failure in a job started as users start one: the launcher sees a rank exit non-zero,
// stops the others and exits non-zero itself with its error naming the rank's exit code.
TEST_F(PipeFailure, AStageThatDiesEndsALauncherJobWithTheLaunchersError) {
  using namespace std::chrono_literals;
  TempDir dir;
  const std::string log = dir.file("launcher.log");
  const pid_t launcher = deepspeed::testing::spawn_background(
      {kLauncher, "--num_gpus", "4", "--master_port", std::to_string(deepspeed::testing::free_port()), "--term_grace",
       "5", kWorker, "--stages", "4", "--gas", "4", "--die_at", "1", "--die_rank", "2", "--out", dir.file("die")},
      log, {{"DS_ACCELERATOR", "cpu"}, {"OMP_NUM_THREADS", "1"}});
  const auto code = deepspeed::testing::wait_for_exit(launcher, 120s);
  if (!code) {
    ::kill(launcher, SIGKILL);
    deepspeed::testing::wait_for_exit(launcher, 10s);
    FAIL() << "the launcher still runs 120 s after a stage died:\n" << deepspeed::testing::read_file(log);
  }
  const auto output = deepspeed::testing::read_file(log);
  EXPECT_NE(*code, 0) << output;
  EXPECT_NE(output.find("rank 2 exits at step 1 (stage failure)"), std::string::npos) << output;
  EXPECT_NE(output.find("exits with return code = 3"), std::string::npos) << output;
}

}  // namespace pipe_integration
