// ZeRO++ on CPU ranks over Gloo (docs/zero.md, "ZeRO++"): hpZ alone trains exactly as stage 3
// (losses, gradient norms, parameters) while its backward gathers stay inside groups of h
// ranks; qwZ and qgZ (alone and with hpZ) keep the mean losses within 1 % of stage 3's over
// 30 steps (qwZ every step's too), qwZ's gathers move at most 1/3.5 of stage 3's bytes and
// qgZ reduces through all-to-alls; checkpoints written with ZeRO++ load into ZeRO++ and into plain stage 3; the
// settings DeepSpeed refuses are refused, naming the key.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>

#include "multiprocess.h"

using deepspeed::testing::run_ranks;
using deepspeed::testing::RankResult;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

namespace {

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_zeropp_worker";

// Buckets of 2000 elements: the MLP's 5508 parameters make three (2000, 2000, 1508); at most
// one bucket's worth live, so that backward gathers again what forward released.
std::string config(const std::string& zeropp, int stage = 3) {
  return R"({"train_batch_size": 32, "steps_per_print": 1000, "gradient_clipping": 1.0,
    "optimizer": {"type": "Adam", "params": {"lr": 0.01}},
    "comms_logger": {"enabled": true, "prof_all": true},
    "zero_optimization": {"stage": )" +
         std::to_string(stage) + R"(, "reduce_bucket_size": 2000, "stage3_param_persistence_threshold": 0,
    "stage3_max_live_parameters": 2000)" + zeropp +
         "}}";
}

struct Run {
  std::vector<RankResult> ranks;
  std::vector<torch::Tensor> params;
  const std::string& out() const { return ranks[0].output; }
};

// `node`: ranks per node (LOCAL_SIZE), 0 for one node.
Run train(int world, const std::string& cfg, TempDir& dir, const std::string& name, std::vector<std::string> extra = {},
          bool expect_success = true, int node = 0) {
  const std::string cfg_path = dir.file(name + ".json");
  write_file(cfg_path, cfg);
  std::vector<std::string> args = {"--deepspeed_config", cfg_path, "--out", dir.file(name)};
  args.insert(args.end(), extra.begin(), extra.end());
  Run run;
  run.ranks = run_ranks(world, kWorker, args, {.env = {}, .local_size = node});
  for (const auto& r : run.ranks) {
    EXPECT_FALSE(r.timed_out) << name << " rank " << r.rank << " hung:\n" << r.output;
    if (expect_success) {
      EXPECT_EQ(r.exit_code, 0) << name << " rank " << r.rank << ":\n" << r.output;
    }
  }
  if (!expect_success || ::testing::Test::HasFailure()) return run;
  torch::load(run.params, dir.file(name) + ".rank0.pt");
  return run;
}

// Values printed as "<key> <step> <value>", in step order.
std::vector<double> series(const std::string& output, const std::string& key) {
  std::vector<double> out;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string k;
    int64_t step = 0;
    double v = 0;
    if (words >> k >> step >> v && k == key) out.push_back(v);
  }
  return out;
}

// "comm <phase> <op> <count> <bytes>" -> {count, bytes}.
std::pair<int64_t, int64_t> comm(const std::string& output, const std::string& phase, const std::string& op) {
  const std::regex re("comm " + phase + " " + op + " (\\d+) (\\d+)");
  std::smatch m;
  if (!std::regex_search(output, m, re)) return {0, 0};
  return {std::stoll(m[1]), std::stoll(m[2])};
}

std::vector<int64_t> backward_gather_sizes(const std::string& output) {
  std::vector<int64_t> out;
  const std::regex re("gather_sizes backward([ \\d]*)");
  std::smatch m;
  if (!std::regex_search(output, m, re)) return out;
  std::istringstream words(m[1].str());
  for (int64_t b; words >> b;) out.push_back(b);
  std::sort(out.begin(), out.end());
  return out;
}

double mean(const std::vector<double>& v, size_t from = 0) {
  double sum = 0;
  for (size_t i = from; i < v.size(); ++i) sum += v[i];
  return sum / static_cast<double>(v.size() - from);
}

// The mean loss over all steps and over the last 10 within 1 % of the reference's, and each
// step's within `per_step` (the losses of single batches on the plateau are noisy: int4
// gradients move them by a few percent, the means by much less).
void expect_losses_within(const Run& run, const Run& reference, double per_step, const std::string& what) {
  const auto a = series(run.out(), "loss"), b = series(reference.out(), "loss");
  ASSERT_EQ(a.size(), b.size()) << what;
  ASSERT_GT(a.size(), 10u) << what;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / b[i]);
  EXPECT_LE(worst, per_step) << what << ": largest relative loss difference " << worst;
  EXPECT_NEAR(mean(a), mean(b), 0.01 * mean(b)) << what << ": mean loss";
  EXPECT_NEAR(mean(a, a.size() - 10), mean(b, b.size() - 10), 0.01 * mean(b, b.size() - 10))
      << what << ": mean of the last 10 losses";
  // Training went somewhere: the last loss is well below the first.
  EXPECT_LT(a.back(), 0.5 * a.front()) << what;
}

const std::vector<std::string> kSteps = {"--steps", "30", "--measure", "1"};

TEST(ZeroPlusPlus, HierarchicalPartitionAloneIsStage3Exactly) {
  TempDir dir;
  const auto reference = train(4, config(""), dir, "stage3", kSteps);
  ASSERT_FALSE(HasFailure());
  const auto hpz = train(4, config(R"(, "zero_hpz_partition_size": 2)"), dir, "hpz", kSteps);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(series(hpz.out(), "loss"), series(reference.out(), "loss"));
  EXPECT_EQ(series(hpz.out(), "norm"), series(reference.out(), "norm"));
  ASSERT_EQ(hpz.params.size(), reference.params.size());
  for (size_t i = 0; i < hpz.params.size(); ++i) EXPECT_TRUE(torch::equal(hpz.params[i], reference.params[i])) << i;
  // Forward gathers as stage 3's (over all 4 ranks); backward ones as many, each of a group
  // of 2: each rank's message is half a bucket instead of a quarter.
  EXPECT_EQ(comm(hpz.out(), "forward", "all_gather"), comm(reference.out(), "forward", "all_gather"));
  const auto sizes = backward_gather_sizes(hpz.out()), reference_sizes = backward_gather_sizes(reference.out());
  ASSERT_FALSE(reference_sizes.empty()) << reference.out();
  ASSERT_EQ(sizes.size(), reference_sizes.size()) << hpz.out();
  for (size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(sizes[i], 2 * reference_sizes[i]);
}

class QuantizedWeights : public ::testing::TestWithParam<int> {};

TEST_P(QuantizedWeights, LossesWithinOnePercentAndGathersAQuarterOfTheBytes) {
  const int world = GetParam();
  TempDir dir;
  const auto reference = train(world, config(""), dir, "stage3", kSteps);
  ASSERT_FALSE(HasFailure());
  const auto qwz = train(world, config(R"(, "zero_quantized_weights": true)"), dir, "qwz", kSteps);
  ASSERT_FALSE(HasFailure());
  expect_losses_within(qwz, reference, 0.01, "qwZ");
  const auto [count, bytes] = comm(qwz.out(), "forward", "all_gather");
  const auto [reference_count, reference_bytes] = comm(reference.out(), "forward", "all_gather");
  ASSERT_GT(reference_bytes, 0) << reference.out();
  EXPECT_EQ(count, 2 * reference_count);  // the int8 values and their scales
  EXPECT_LE(bytes * 3.5, reference_bytes) << bytes << " vs " << reference_bytes;
}

INSTANTIATE_TEST_SUITE_P(Ranks, QuantizedWeights, ::testing::Values(2, 4),
                         [](const auto& info) { return "world" + std::to_string(info.param); });

TEST(ZeroPlusPlus, QuantizedGradientsReduceThroughAllToAllWithinOnePercent) {
  TempDir dir;
  const auto reference = train(4, config(""), dir, "stage3", kSteps, true, 2);
  ASSERT_FALSE(HasFailure());
  const auto qgz = train(4, config(R"(, "zero_quantized_gradients": true)"), dir, "qgz", kSteps, true, 2);
  ASSERT_FALSE(HasFailure());
  expect_losses_within(qgz, reference, 0.05, "qgZ");
  // Two buckets of 500-value slices through the two all-to-alls (values and scales each);
  // the third (377-value slices, odd) falls back to the reduce-scatter, with DeepSpeed's warning.
  EXPECT_EQ(comm(qgz.out(), "backward", "all_to_all_single").first, 2 * 4) << qgz.out();
  EXPECT_EQ(comm(reference.out(), "backward", "all_to_all_single").first, 0);
  EXPECT_NE(qgz.out().find("qgZ falls back to reduce_scatter"), std::string::npos) << qgz.out();
}

TEST(ZeroPlusPlus, AllThreeWithinOnePercentAndCheckpointsLoadEitherWay) {
  TempDir dir;
  std::vector<std::string> args = kSteps;
  const std::string all =
      R"(, "zero_quantized_weights": true, "zero_hpz_partition_size": 2, "zero_quantized_gradients": true)";
  const auto reference = train(4, config(""), dir, "stage3", args, true, 2);
  ASSERT_FALSE(HasFailure());
  args.insert(args.end(), {"--save", dir.file("ckpt")});
  const auto zeropp = train(4, config(all), dir, "zeropp", args, true, 2);
  ASSERT_FALSE(HasFailure());
  expect_losses_within(zeropp, reference, 0.05, "qwZ + hpZ + qgZ");
  // The masters are full precision: loading gives back exactly the parameters saved, under
  // ZeRO++ and under plain stage 3.
  for (const std::string& zero : {all, std::string()}) {
    const auto loaded = train(4, config(zero), dir, zero.empty() ? "load_stage3" : "load_zeropp",
                              {"--steps", "30", "--load", dir.file("ckpt")}, true, 2);
    ASSERT_FALSE(HasFailure());
    ASSERT_EQ(loaded.params.size(), zeropp.params.size());
    for (size_t i = 0; i < loaded.params.size(); ++i) {
      EXPECT_TRUE(torch::equal(loaded.params[i], zeropp.params[i])) << (zero.empty() ? "stage 3 " : "ZeRO++ ") << i;
    }
  }
}

TEST(ZeroPlusPlus, RefusesWhatDeepSpeedRefuses) {
  TempDir dir;
  // hpZ's groups must divide the world (DeepSpeed's _ensure_divisibility).
  auto run = train(4, config(R"(, "zero_hpz_partition_size": 3)"), dir, "hpz3", {"--steps", "1"}, false);
  EXPECT_NE(run.ranks[0].exit_code, 0);
  EXPECT_NE(run.out().find("zero_optimization.zero_hpz_partition_size: 3 does not divide the data-parallel world size 4"),
            std::string::npos)
      << run.out();
  // qgZ's nodes must be equal.
  run = train(4, config(R"(, "zero_quantized_gradients": true)"), dir, "qgz3", {"--steps", "1"}, false, 3);
  EXPECT_NE(run.ranks[0].exit_code, 0);
  EXPECT_NE(run.out().find("zero_optimization.zero_quantized_gradients: the data-parallel world size 4 is not a whole"),
            std::string::npos)
      << run.out();
  // Below stage 3 the switches do nothing, and say so.
  run = train(2, config(R"(, "zero_quantized_weights": true, "zero_hpz_partition_size": 2)", 2), dir, "stage2",
              {"--steps", "1"});
  const std::regex ignored("zero_optimization\\.(zero_quantized_weights|zero_hpz_partition_size)[^\\n]*ZeRO\\+\\+ "
                           "is done by ZeRO stage 3 only; ignored at stage 2");
  const auto found = std::distance(std::sregex_iterator(run.out().begin(), run.out().end(), ignored), std::sregex_iterator());
  EXPECT_EQ(found, 2) << run.out();
}

}  // namespace
