// The 1-bit optimizers on 2 and 4 CPU ranks over Gloo (loopback): the compressed all-reduce
// and the three optimizers equal their definitions computed on one rank, error feedback
// included; engine runs of each optimizer agree across ranks and learn; after the warm-up they
// send at least 16x fewer bytes per step (comms logger) than Adam; checkpoints resume in
// either phase.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>

#include "gloo_ranks_test.h"
#include "multiprocess.h"

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

namespace {

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_onebit_worker";

std::vector<deepspeed::testing::RankResult> run(int world, const std::vector<std::string>& args) {
  auto r = run_ranks(world, kWorker, args, {.timeout = std::chrono::seconds(120), .env = {}});
  for (const auto& rank : r) {
    EXPECT_FALSE(rank.timed_out) << "rank " << rank.rank << " hung:\n" << rank.output;
    EXPECT_EQ(rank.exit_code, 0) << "rank " << rank.rank << ":\n" << rank.output;
  }
  return r;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The value after "<key> " on its last line that has one.
double value_of(const std::string& out, const std::string& key) {
  std::smatch m;
  std::string::const_iterator from = out.begin();
  double value = std::nan("");
  const std::regex re("(^|\n)" + key + " ([-+0-9.eE]+)");
  while (std::regex_search(from, out.end(), m, re)) {
    value = std::stod(m[2]);
    from = m.suffix().first;
  }
  return value;
}

std::map<int, double> losses(const std::string& out) {
  std::map<int, double> l;
  const std::regex re("(^|\n)loss (\\d+) ([-+0-9.eE]+)");
  for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it) l[std::stoi((*it)[2])] = std::stod((*it)[3]);
  return l;
}

std::string config(const std::string& type, const std::string& params) {
  return R"({"train_micro_batch_size_per_gpu": 8, "steps_per_print": 1000, "comms_logger": {"enabled": true},
            "optimizer": {"type": ")" + type + R"(", "params": )" + params + "}}";
}

using OneBitGloo = deepspeed::testing::GlooRanksTest;

TEST_F(OneBitGloo, CompressedAllreduceEqualsItsDefinitionOnTwoAndFourRanks) {
  for (int world : {2, 4}) {
    auto r = run(world, {"allreduce", "--steps", "5"});
    for (const auto& rank : r) EXPECT_TRUE(contains(rank.output, "allreduce matches over 5 steps")) << rank.output;
  }
}

TEST_F(OneBitGloo, OneBitAdamEqualsItsDefinitionThroughTheFreeze) {
  auto r = run(2, {"adam", "--steps", "7", "--freeze_step", "3"});
  for (const auto& rank : r) EXPECT_TRUE(contains(rank.output, "adam matches over 7 steps")) << rank.output;
}

// 0/1 Adam and 1-bit LAMB step for step as DeepSpeed's updates written out in the worker:
// through the variance-interval doublings, the variance freeze and the local steps' interval
// growing to its clipper (0/1 Adam); through the freeze into the flat, scaled, compressed
// momentum and the bounded trust-ratio factor (1-bit LAMB).
TEST_F(OneBitGloo, ZeroOneAdamEqualsItsDefinitionThroughTheVarianceFreezeAndLocalSteps) {
  auto r = run(2, {"zeroone", "--steps", "16"});
  for (const auto& rank : r) EXPECT_TRUE(contains(rank.output, "zeroone matches over 16 steps")) << rank.output;
}

TEST_F(OneBitGloo, OneBitLambEqualsItsDefinitionThroughTheFreeze) {
  auto r = run(2, {"lamb", "--steps", "20", "--freeze_step", "3"});
  for (const auto& rank : r) EXPECT_TRUE(contains(rank.output, "lamb matches over 20 steps")) << rank.output;
}

// Each optimizer through its warm-up into the compressed phase: the ranks end with the same
// weights, the loss falls, and a step after the warm-up sends 16x fewer bytes than Adam's.
TEST_F(OneBitGloo, EngineRunsAgreeLearnAndSendSixteenTimesFewerBytes) {
  TempDir dir;
  write_file(dir.file("adam.json"), config("Adam", R"({"lr": 0.01})"));
  auto adam = run(2, {"train", "--deepspeed_config", dir.file("adam.json"), "--steps", "8", "--measure_from", "4"});
  const double adam_bytes = value_of(adam.at(0).output, "bytes_per_step");
  EXPECT_GE(adam_bytes, 4.0 * (32 * 128 + 128 + 128 * 8 + 8)) << adam.at(0).output;
  // Warm-ups long enough for a frozen variance without bias correction (DeepSpeed's).
  const std::map<std::string, std::string> onebit = {
      {"OneBitAdam", R"({"lr": 0.001, "freeze_step": 10})"},
      {"ZeroOneAdam",
       R"({"lr": 0.001, "var_freeze_step": 10, "var_update_scaler": 4, "local_step_scaler": 4, "local_step_clipper": 2})"},
      {"OneBitLamb", R"({"lr": 0.02, "freeze_step": 10})"}};
  for (const auto& [type, params] : onebit) {
    write_file(dir.file(type + ".json"), config(type, params));
    auto r = run(2, {"train", "--deepspeed_config", dir.file(type + ".json"), "--steps", "30", "--measure_from", "12"});
    const auto& out = r.at(0).output;
    // 0/1 Adam undoes and redoes its local steps: equal up to rounding.
    const double checksum = value_of(out, "checksum");
    EXPECT_NEAR(checksum, value_of(r.at(1).output, "checksum"), 1e-6 * checksum) << type << ": the ranks' weights differ";
    const auto l = losses(out);
    ASSERT_EQ(l.size(), 30u) << out;
    double first = 0.0, last = 0.0;
    for (int s = 1; s <= 5; ++s) {
      first += l.at(s);
      last += l.at(25 + s);
    }
    EXPECT_LT(last, 0.6 * first) << type << " does not learn:\n" << out;
    const double bytes = value_of(out, "bytes_per_step");
    EXPECT_LE(bytes * 16.0, adam_bytes) << type << " sends " << bytes << " bytes per step, Adam " << adam_bytes << "\n"
                                        << out;
  }
}

// bf16: the optimizer steps fp32 masters (BF16_Optimizer) and the ranks stay equal.
TEST_F(OneBitGloo, OneBitAdamTrainsBf16Masters) {
  TempDir dir;
  write_file(dir.file("c.json"), R"({"train_micro_batch_size_per_gpu": 8, "steps_per_print": 1000,
      "bf16": {"enabled": true}, "optimizer": {"type": "OneBitAdam", "params": {"lr": 0.001, "freeze_step": 5}}})");
  auto r = run(2, {"train", "--deepspeed_config", dir.file("c.json"), "--steps", "12"});
  const auto& out = r.at(0).output;
  EXPECT_TRUE(contains(out, "DeepSpeed Final Optimizer = BF16_Optimizer")) << out;
  EXPECT_TRUE(contains(out, "Currently the convergence of 1-bit Adam is only verified under FP16")) << out;
  EXPECT_EQ(value_of(out, "checksum"), value_of(r.at(1).output, "checksum"));
  const auto l = losses(out);
  ASSERT_EQ(l.size(), 12u) << out;
  for (const auto& [step, loss] : l) EXPECT_TRUE(std::isfinite(loss)) << step;
  EXPECT_LT(l.at(12), l.at(1)) << out;
}

// Saved in the warm-up and resumed, 1-bit Adam crosses into the compressed phase; saved in
// the compressed phase, it resumes there without a full-precision step.
TEST_F(OneBitGloo, OneBitAdamResumesOnEitherSideOfTheFreeze) {
  TempDir dir;
  write_file(dir.file("c.json"), config("OneBitAdam", R"({"lr": 0.001, "freeze_step": 5})"));
  run(2, {"train", "--deepspeed_config", dir.file("c.json"), "--steps", "3", "--save", dir.file("warm")});
  auto warm = run(2, {"train", "--deepspeed_config", dir.file("c.json"), "--steps", "10", "--load", dir.file("warm"),
                      "--save", dir.file("compressed")});
  EXPECT_TRUE(contains(warm.at(0).output, "loaded step 3 averaged 1")) << warm.at(0).output;
  EXPECT_EQ(value_of(warm.at(0).output, "checksum"), value_of(warm.at(1).output, "checksum"));
  auto compressed = run(2, {"train", "--deepspeed_config", dir.file("c.json"), "--steps", "14", "--load",
                            dir.file("compressed"), "--measure_from", "10"});
  EXPECT_TRUE(contains(compressed.at(0).output, "loaded step 10 averaged 0")) << compressed.at(0).output;
  EXPECT_EQ(value_of(compressed.at(0).output, "checksum"), value_of(compressed.at(1).output, "checksum"));
  const auto l = losses(compressed.at(0).output);
  ASSERT_EQ(l.size(), 4u) << compressed.at(0).output;
  for (const auto& [step, loss] : l) EXPECT_TRUE(std::isfinite(loss)) << step;
  // No full-precision all-reduce after the resume: well under an fp32 gradient's 4 bytes each.
  EXPECT_LT(value_of(compressed.at(0).output, "bytes_per_step"), 4.0 * (32 * 128 + 128 + 128 * 8 + 8) / 16.0)
      << compressed.at(0).output;
}

}  // namespace
