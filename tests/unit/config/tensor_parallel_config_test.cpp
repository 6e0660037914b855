// The "tensor_parallel" section: DeepSpeed's AutoTP training keys and defaults, partition_config's
// layer specs as AutoTPConfig.from_dict reads them, its shape checks with DeepSpeed's messages,
// errors naming the key, and no "not implemented" warning.
#include <gtest/gtest.h>

#include <deepspeed/config.h>

#include "test_helpers.h"

namespace deepspeed {
// A named namespace: this binary's test files are compiled together (unity build).
namespace tensor_parallel_config_test {

TEST(TensorParallelConfig, DefaultsAreDeepSpeeds) {
  const auto c = parse_config(R"({"train_batch_size": 8})", 1);
  EXPECT_EQ(c.tensor_parallel.autotp_size, 0);
  EXPECT_FALSE(c.tensor_parallel.tp_overlap_comm);
  EXPECT_FALSE(c.tensor_parallel.preset_model.has_value());
  EXPECT_FALSE(c.tensor_parallel.has_partition_config);
  EXPECT_EQ(c.to_json()["tensor_parallel"]["autotp_size"], 0);
}

TEST(TensorParallelConfig, PartitionConfigIsReadAndTheSectionIsNotWarnedAbout) {
  const auto c = parse_config(R"({"train_batch_size": 8, "tensor_parallel": {"autotp_size": 2, "preset_model": "Llama",
      "partition_config": {"use_default_specs": false, "strict_mode": true, "layer_specs": [
        {"patterns": [".*\\.o_proj\\.weight$"], "partition_type": "ROW"},
        {"patterns": [".*\\.qkv\\.weight$"], "shape": [[4, 2, 2], -1], "partition_dim": 0},
        {"patterns": [".*gate"], "partition_type": "skip", "grad_allreduce": true, "model_types": ["llama"]}]}}})",
                              1);
  const auto& t = c.tensor_parallel;
  EXPECT_EQ(t.autotp_size, 2);
  EXPECT_EQ(t.preset_model, "llama");
  EXPECT_TRUE(t.has_partition_config);
  EXPECT_FALSE(t.use_default_specs);
  EXPECT_TRUE(t.strict_mode);
  ASSERT_EQ(t.layer_specs.size(), 3u);
  EXPECT_EQ(t.layer_specs[0].partition_type, "row");
  EXPECT_EQ(t.layer_specs[0].effective_partition_dim(), 1);
  EXPECT_EQ(t.layer_specs[1].partition_type, "column");
  EXPECT_EQ(t.layer_specs[1].shape, (std::vector<std::vector<int64_t>>{{4, 2, 2}, {-1}}));
  EXPECT_TRUE(t.layer_specs[2].grad_allreduce);
  EXPECT_EQ(t.layer_specs[2].model_types, std::vector<std::string>{"llama"});
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
  EXPECT_EQ(c.to_json()["tensor_parallel"]["partition_config"]["strict_mode"], true);
}

TEST(TensorParallelConfig, BadValuesAreErrorsNamingTheKey) {
  auto e = testing::config_error(R"({"train_batch_size": 8, "tensor_parallel": {"autotp_size": -1}})");
  EXPECT_EQ(e.path(), "tensor_parallel.autotp_size");
  e = testing::config_error(R"({"train_batch_size": 8, "tensor_parallel": {"preset_model": "gpt9"}})");
  EXPECT_EQ(e.path(), "tensor_parallel.preset_model");
  e = testing::config_error(R"({"train_batch_size": 8, "tensor_parallel": {"autotp_size": 2, "tp": {"tp_size": 4}}})");
  EXPECT_NE(std::string(e.what()).find("tensor_parallel.tp.tp_size (4) does not match tensor_parallel.autotp_size (2)."),
            std::string::npos)
      << e.what();
  e = testing::config_error(R"({"train_batch_size": 8, "tensor_parallel": {"partition_config": {"layer_specs": [
      {"patterns": ["x"], "partition_type": "diagonal"}]}}})");
  EXPECT_EQ(e.path(), "tensor_parallel.partition_config.layer_specs[0].partition_type");
  e = testing::config_error(R"({"train_batch_size": 8, "tensor_parallel": {"partition_config": {"layer_specs": [
      {"patterns": ["x"], "shape": [3, [1, 2]], "partition_dim": 0}]}}})");
  EXPECT_NE(std::string(e.what()).find("AutoTP shape nested tuple only allowed at partition_dim=0, got at 1."),
            std::string::npos)
      << e.what();
  e = testing::config_error(R"({"train_batch_size": 8, "tensor_parallel": {"partition_config": {"layer_specs": [
      {"patterns": ["x"], "shape": [0, -1]}]}}})");
  EXPECT_NE(std::string(e.what()).find("AutoTP shape dimensions must be positive integers or -1."), std::string::npos);
  e = testing::config_error(R"({"train_batch_size": 8, "tensor_parallel": {"partition_config": {"layer_spec": []}}})");
  EXPECT_NE(std::string(e.what()).find("layer_specs"), std::string::npos) << e.what();
}

}  // namespace tensor_parallel_config_test
}  // namespace deepspeed
