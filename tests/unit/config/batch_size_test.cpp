// DeepSpeed's batch-size rules: every derivation rule and every error, with DeepSpeed's exact messages.
#include <gtest/gtest.h>

#include <deepspeed/config.h>

#include "test_helpers.h"

namespace deepspeed {
namespace {

using std::nullopt;

void expect_sizes(const BatchSizes& b, int64_t tb, int64_t mb, int64_t gas) {
  EXPECT_EQ(b.train_batch_size, tb);
  EXPECT_EQ(b.train_micro_batch_size_per_gpu, mb);
  EXPECT_EQ(b.gradient_accumulation_steps, gas);
}

// The error resolve_batch_sizes throws; its message is "<key>: <DeepSpeed's text>".
ConfigError batch_error(std::optional<int64_t> tb, std::optional<int64_t> mb, std::optional<int64_t> gas,
                        int64_t w) {
  try {
    resolve_batch_sizes(tb, mb, gas, w);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return ConfigError("", "");
}

TEST(BatchSize, AllThreeGivenAndConsistent) { expect_sizes(resolve_batch_sizes(32, 4, 2, 4), 32, 4, 2); }

TEST(BatchSize, TrainAndMicroGiveAccumulation) {
  expect_sizes(resolve_batch_sizes(32, 4, nullopt, 2), 32, 4, 4);  // (32 // 4) // 2
}

TEST(BatchSize, TrainAndAccumulationGiveMicro) {
  expect_sizes(resolve_batch_sizes(32, nullopt, 2, 4), 32, 4, 2);  // (32 // 4) // 2
}

TEST(BatchSize, MicroAndAccumulationGiveTrain) { expect_sizes(resolve_batch_sizes(nullopt, 4, 2, 3), 24, 4, 2); }

TEST(BatchSize, TrainOnly) { expect_sizes(resolve_batch_sizes(16, nullopt, nullopt, 4), 16, 4, 1); }

TEST(BatchSize, MicroOnly) { expect_sizes(resolve_batch_sizes(nullopt, 8, nullopt, 2), 16, 8, 1); }

TEST(BatchSize, NeitherTrainNorMicro) {
  const char* message = "Either train_batch_size or train_micro_batch_size_per_gpu needs to be provided";
  EXPECT_EQ(batch_error(nullopt, nullopt, nullopt, 1).what(), std::string("train_batch_size: ") + message);
  EXPECT_EQ(batch_error(nullopt, nullopt, 4, 1).what(), std::string("train_batch_size: ") + message);
}

TEST(BatchSize, Check1TrainBatchPositive) {
  auto e = batch_error(0, 1, nullopt, 1);
  EXPECT_EQ(e.path(), "train_batch_size");
  EXPECT_STREQ(e.what(), "train_batch_size: Train batch size: 0 has to be greater than 0");
  EXPECT_STREQ(batch_error(-8, 2, nullopt, 1).what(), "train_batch_size: Train batch size: -8 has to be greater than 0");
  // Micro batch 0 with accumulation derives train batch 0, which check 1 reports first.
  EXPECT_STREQ(batch_error(nullopt, 0, 2, 1).what(), "train_batch_size: Train batch size: 0 has to be greater than 0");
}

TEST(BatchSize, Check2MicroBatchPositive) {
  // 3 // 4 == 0: a train batch smaller than the world size.
  auto e = batch_error(3, nullopt, nullopt, 4);
  EXPECT_EQ(e.path(), "train_micro_batch_size_per_gpu");
  EXPECT_STREQ(e.what(), "train_micro_batch_size_per_gpu: Micro batch size per gpu: 0 has to be greater than 0");
  // DeepSpeed divides by zero here; we report the micro batch instead.
  EXPECT_STREQ(batch_error(8, 0, nullopt, 1).what(),
               "train_micro_batch_size_per_gpu: Micro batch size per gpu: 0 has to be greater than 0");
}

TEST(BatchSize, DerivationUsesPythonFloorDivision) {
  // (7 // 1) // -2 == -4 in Python (C++ truncation would give -3).
  EXPECT_STREQ(batch_error(7, nullopt, -2, 1).what(),
               "train_micro_batch_size_per_gpu: Micro batch size per gpu: -4 has to be greater than 0");
}

TEST(BatchSize, Check3AccumulationPositive) {
  auto e = batch_error(8, 4, nullopt, 4);  // (8 // 4) // 4 == 0
  EXPECT_EQ(e.path(), "gradient_accumulation_steps");
  EXPECT_STREQ(e.what(), "gradient_accumulation_steps: Gradient accumulation steps: 0 has to be greater than 0");
  EXPECT_STREQ(batch_error(8, 2, -1, 1).what(),
               "gradient_accumulation_steps: Gradient accumulation steps: -1 has to be greater than 0");
}

TEST(BatchSize, Check4ProductMustMatch) {
  auto e = batch_error(10, 3, nullopt, 1);  // gas = 3, 3 * 3 * 1 = 9
  EXPECT_EQ(e.path(), "train_batch_size");
  EXPECT_STREQ(e.what(),
               "train_batch_size: Check batch related parameters. train_batch_size is not equal to "
               "micro_batch_per_gpu * gradient_acc_step * world_size 10 != 3 * 3 * 1");
  EXPECT_STREQ(batch_error(32, 4, 2, 2).what(),
               "train_batch_size: Check batch related parameters. train_batch_size is not equal to "
               "micro_batch_per_gpu * gradient_acc_step * world_size 32 != 4 * 2 * 2");
  // Train batch and accumulation: (30 // 4) // 2 == 3, 3 * 2 * 4 == 24.
  EXPECT_STREQ(batch_error(30, nullopt, 2, 4).what(),
               "train_batch_size: Check batch related parameters. train_batch_size is not equal to "
               "micro_batch_per_gpu * gradient_acc_step * world_size 30 != 3 * 2 * 4");
}

TEST(BatchSize, HugeProductsAreErrorsNotOverflow) {
  auto e = batch_error(nullopt, int64_t{1} << 40, int64_t{1} << 30, 1);
  EXPECT_EQ(e.path(), "train_batch_size");
  EXPECT_NE(std::string(e.what()).find("does not fit in 64 bits"), std::string::npos);
}

TEST(BatchSize, ThroughTheConfigReader) {
  const auto c = parse_config(R"({"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2})", 8);
  EXPECT_EQ(c.train_batch_size, 64);
  EXPECT_EQ(c.world_size, 8);
  // null is "not given", as with dict.get in DeepSpeed.
  const auto n = parse_config(R"({"train_batch_size": 8, "gradient_accumulation_steps": null})", 2);
  EXPECT_EQ(n.gradient_accumulation_steps, 1);
  EXPECT_EQ(n.train_micro_batch_size_per_gpu, 4);
  // Integral floats are integers.
  EXPECT_EQ(parse_config(R"({"train_batch_size": 1.6e1})", 1).train_batch_size, 16);
}

TEST(BatchSize, ConfigErrorsPointIntoTheFile) {
  auto e = testing::config_error("{\n  \"train_batch_size\": 10,\n  \"train_micro_batch_size_per_gpu\": 3\n}");
  EXPECT_EQ(e.path(), "train_batch_size");
  EXPECT_STREQ(e.what(),
               "train_batch_size: Check batch related parameters. train_batch_size is not equal to "
               "micro_batch_per_gpu * gradient_acc_step * world_size 10 != 3 * 3 * 1 (at ds_config.json:2:3)");
  EXPECT_STREQ(testing::config_error(R"({"train_batch_size": "abc"})").what(),
               "train_batch_size: expected a positive integer, got \"abc\" (at ds_config.json:1:2)");
  EXPECT_STREQ(testing::config_error(R"({"train_batch_size": 2.5})").what(),
               "train_batch_size: expected a positive integer, got 2.5 (at ds_config.json:1:2)");
  EXPECT_STREQ(testing::config_error(R"({"gradient_accumulation_steps": 2})").what(),
               "train_batch_size: Either train_batch_size or train_micro_batch_size_per_gpu needs to be provided");
}

TEST(BatchSize, SequenceParallelDividesTheWorld) {
  const auto c = parse_config(R"({"train_micro_batch_size_per_gpu": 2, "sequence_parallel_size": 4})", 8);
  EXPECT_EQ(c.world_size, 2);
  EXPECT_EQ(c.train_batch_size, 4);
  EXPECT_EQ(testing::config_error(R"({"train_batch_size": 8, "sequence_parallel_size": 3})", 8).path(),
            "sequence_parallel_size");
}

TEST(BatchSize, WorldSizeMustBePositive) {
  EXPECT_THROW(parse_config(R"({"train_batch_size": 8})", 0), ConfigError);
  EXPECT_THROW(resolve_batch_sizes(8, nullopt, nullopt, -1), ConfigError);
}

}  // namespace
}  // namespace deepspeed
