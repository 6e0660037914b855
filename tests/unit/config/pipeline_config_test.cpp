// The "pipeline" section: DeepSpeed's keys and defaults ("stages": "auto", "partition": "best",
// partitioned activations and gradients on), type errors and unknown keys named, the resolved
// JSON, and no "not implemented" warning.
#include <gtest/gtest.h>

#include <deepspeed/config.h>

#include "test_helpers.h"

namespace deepspeed {
// A named namespace: this binary's test files are compiled together (unity build).
namespace pipeline_config_test {

TEST(PipelineConfig, DefaultsAreDeepSpeeds) {
  const auto c = parse_config(R"({"train_batch_size": 8})", 1);
  const auto& p = c.pipeline;
  EXPECT_FALSE(p.stages.has_value());
  EXPECT_EQ(p.partition, "best");
  EXPECT_FALSE(p.seed_layers);
  EXPECT_EQ(p.activation_checkpoint_interval, 0);
  EXPECT_TRUE(p.pipe_partitioned);
  EXPECT_TRUE(p.grad_partitioned);
  EXPECT_FALSE(p.use_reentrant.has_value());
  EXPECT_EQ(c.to_json()["pipeline"], nlohmann::json::parse(R"({"stages": "auto", "partition": "best",
      "seed_layers": false, "activation_checkpoint_interval": 0, "pipe_partitioned": true, "grad_partitioned": true})"));
}

TEST(PipelineConfig, EveryKeyIsReadAndTheSectionIsNotWarnedAbout) {
  const auto c = parse_config(R"({"train_batch_size": 8, "pipeline": {"stages": 4, "partition": "uniform",
      "seed_layers": true, "activation_checkpoint_interval": 2, "pipe_partitioned": false,
      "grad_partitioned": false, "use_reentrant": false}})",
                              1);
  const auto& p = c.pipeline;
  EXPECT_EQ(p.stages, 4);
  EXPECT_EQ(p.partition, "uniform");
  EXPECT_TRUE(p.seed_layers);
  EXPECT_EQ(p.activation_checkpoint_interval, 2);
  EXPECT_FALSE(p.pipe_partitioned);
  EXPECT_FALSE(p.grad_partitioned);
  EXPECT_EQ(p.use_reentrant, false);
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
  const auto again = config_from_json(c.to_json(), 1);
  EXPECT_EQ(again.to_json()["pipeline"], c.to_json()["pipeline"]);
}

TEST(PipelineConfig, BadValuesAndUnknownKeysAreErrorsNamingThem) {
  auto e = testing::config_error(R"({"train_batch_size": 8,
  "pipeline": {"stages": "two"}})");
  EXPECT_EQ(e.path(), "pipeline.stages");
  EXPECT_NE(std::string(e.what()).find("ds_config.json:2:"), std::string::npos) << e.what();
  e = testing::config_error(R"({"train_batch_size": 8, "pipeline": {"stages": 0}})");
  EXPECT_EQ(e.path(), "pipeline.stages");
  e = testing::config_error(R"({"train_batch_size": 8, "pipeline": {"activation_checkpoint_interval": -1}})");
  EXPECT_EQ(e.path(), "pipeline.activation_checkpoint_interval");
  e = testing::config_error(R"({"train_batch_size": 8, "pipeline": {"pipe_partitioned": "yes"}})");
  EXPECT_EQ(e.path(), "pipeline.pipe_partitioned");
  e = testing::config_error(R"({"train_batch_size": 8, "pipeline": {"stage": 2}})");
  EXPECT_NE(std::string(e.what()).find("stages"), std::string::npos) << e.what();
}

}  // namespace pipeline_config_test
}  // namespace deepspeed
