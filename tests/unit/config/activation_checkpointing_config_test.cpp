// The "activation_checkpointing" section: DeepSpeed's keys and defaults, type errors and
// unknown keys named with their position, the resolved JSON, and no "not implemented" warning.
#include <gtest/gtest.h>

#include <deepspeed/config.h>

#include "test_helpers.h"

namespace deepspeed {
// A named namespace: this binary's test files are compiled together (unity build).
namespace activation_checkpointing_config_test {

TEST(ActivationCheckpointingConfig, DefaultsAreDeepSpeeds) {
  const auto c = parse_config(R"({"train_batch_size": 8})", 1);
  const auto& a = c.activation_checkpointing;
  EXPECT_FALSE(a.partition_activations);
  EXPECT_FALSE(a.cpu_checkpointing);
  EXPECT_FALSE(a.contiguous_memory_optimization);
  EXPECT_FALSE(a.number_checkpoints.has_value());
  EXPECT_FALSE(a.synchronize_checkpoint_boundary);
  EXPECT_FALSE(a.profile);
  const auto j = c.to_json()["activation_checkpointing"];
  EXPECT_EQ(j, nlohmann::json::parse(R"({"partition_activations": false, "cpu_checkpointing": false,
      "contiguous_memory_optimization": false, "number_checkpoints": null,
      "synchronize_checkpoint_boundary": false, "profile": false})"));
}

TEST(ActivationCheckpointingConfig, EveryKeyIsReadAndTheSectionIsNotWarnedAbout) {
  const auto c = parse_config(R"({"train_batch_size": 8, "activation_checkpointing": {
      "partition_activations": true, "cpu_checkpointing": true, "contiguous_memory_optimization": true,
      "number_checkpoints": 24, "synchronize_checkpoint_boundary": true, "profile": true}})",
                              1);
  const auto& a = c.activation_checkpointing;
  EXPECT_TRUE(a.partition_activations);
  EXPECT_TRUE(a.cpu_checkpointing);
  EXPECT_TRUE(a.contiguous_memory_optimization);
  EXPECT_EQ(a.number_checkpoints, 24);
  EXPECT_TRUE(a.synchronize_checkpoint_boundary);
  EXPECT_TRUE(a.profile);
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
  EXPECT_EQ(c.to_json()["activation_checkpointing"]["number_checkpoints"], 24);
}

TEST(ActivationCheckpointingConfig, NullCountAndAutoMeanTheDefault) {
  const auto c = parse_config(
      R"({"train_batch_size": 8, "activation_checkpointing": {"number_checkpoints": null, "profile": "auto"}})", 1);
  EXPECT_FALSE(c.activation_checkpointing.number_checkpoints.has_value());
  EXPECT_FALSE(c.activation_checkpointing.profile);
}

TEST(ActivationCheckpointingConfig, BadValuesAndUnknownKeysAreErrorsNamingThem) {
  auto e = testing::config_error(R"({"train_batch_size": 8,
  "activation_checkpointing": {"partition_activations": 1}})");
  EXPECT_EQ(e.path(), "activation_checkpointing.partition_activations");
  EXPECT_NE(std::string(e.what()).find("ds_config.json:2:"), std::string::npos) << e.what();
  e = testing::config_error(R"({"train_batch_size": 8, "activation_checkpointing": {"number_checkpoints": 0}})");
  EXPECT_EQ(e.path(), "activation_checkpointing.number_checkpoints");
  // DeepSpeed's own format string spells the first key "partitioned_activations"; its reader
  // takes only "partition_activations".
  e = testing::config_error(
      R"({"train_batch_size": 8, "activation_checkpointing": {"partitioned_activations": true}})");
  EXPECT_NE(std::string(e.what()).find("partition_activations"), std::string::npos) << e.what();
}

}  // namespace activation_checkpointing_config_test
}  // namespace deepspeed
