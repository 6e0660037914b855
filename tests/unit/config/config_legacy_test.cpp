// Legacy spellings DeepSpeed still accepts: mapped to the current keys, with a deprecation
// warning; old and new together are an error.
#include <gtest/gtest.h>

#include <deepspeed/config.h>

#include "test_helpers.h"

namespace deepspeed {
namespace {

using testing::config_error;
using testing::has_warning;

std::string legacy_config_with(const std::string& section) { return "{\"train_batch_size\": 8, " + section + "}"; }

TEST(ConfigLegacy, ZeroOptimizationTrueIsStage1) {
  const auto c = parse_config(legacy_config_with(R"("zero_optimization": true, "allgather_size": 2e8)"), 1);
  EXPECT_EQ(c.zero_stage(), 1);
  EXPECT_EQ(c.zero_optimization.allgather_bucket_size, 200000000);
  EXPECT_TRUE(has_warning(c, "zero_optimization: the boolean form is deprecated"));
  const auto off = parse_config(legacy_config_with(R"("zero_optimization": false)"), 1);
  EXPECT_EQ(off.zero_stage(), 0);
  EXPECT_TRUE(has_warning(off, "{\"stage\": 0}"));
}

TEST(ConfigLegacy, CpuOffloadMapsToOffloadOptimizer) {
  const auto c = parse_config(legacy_config_with(R"("zero_optimization": {"stage": 2, "cpu_offload": true})"), 1);
  ASSERT_TRUE(c.zero_optimization.offload_optimizer);
  EXPECT_EQ(c.zero_optimization.offload_optimizer->device, "cpu");
  EXPECT_TRUE(c.zero_optimization.offload_optimizer->pin_memory);
  EXPECT_TRUE(has_warning(c, "zero_optimization.cpu_offload: deprecated; use \"offload_optimizer\""));
  EXPECT_FALSE(parse_config(legacy_config_with(R"("zero_optimization": {"cpu_offload": false})"), 1).zero_optimization.offload_optimizer);
}

TEST(ConfigLegacy, CpuOffloadParamMapsToOffloadParam) {
  const auto c = parse_config(legacy_config_with(R"("zero_optimization": {"stage": 3, "cpu_offload_param": true,
                                         "cpu_offload_use_pin_memory": true})"),
                              1);
  ASSERT_TRUE(c.zero_optimization.offload_param_enabled());
  EXPECT_EQ(c.zero_optimization.offload_param->device, "cpu");
  EXPECT_TRUE(has_warning(c, "zero_optimization.cpu_offload_param: deprecated"));
  EXPECT_TRUE(has_warning(c, "zero_optimization.cpu_offload_use_pin_memory: deprecated and ignored"));
}

TEST(ConfigLegacy, OldAndNewTogetherIsAnError) {
  EXPECT_STREQ(config_error(legacy_config_with(R"("zero_optimization": {"cpu_offload": false, "offload_optimizer": {"device": "cpu"}})"))
                   .what(),
               "zero_optimization.cpu_offload: Cannot provide deprecated parameter 'cpu_offload' and replacing "
               "parameter 'offload_optimizer' together (at ds_config.json:1:47)");
  EXPECT_EQ(config_error(legacy_config_with(R"("zero_optimization": {"cpu_offload_param": true, "offload_param": {"device": "cpu"}})"))
                .path(),
            "zero_optimization.cpu_offload_param");
  EXPECT_EQ(config_error(legacy_config_with(R"("zero_optimization": {"stage3_gather_fp16_weights_on_model_save": true,
                                  "stage3_gather_16bit_weights_on_model_save": true})"))
                .path(),
            "zero_optimization.stage3_gather_fp16_weights_on_model_save");
  EXPECT_EQ(config_error(legacy_config_with(R"("bfloat16": {"enabled": true}, "bf16": {"enabled": true})")).path(), "bfloat16");
}

TEST(ConfigLegacy, Gather16BitWeights) {
  const auto c = parse_config(legacy_config_with(R"("zero_optimization": {"stage": 3, "stage3_gather_fp16_weights_on_model_save": true})"), 1);
  EXPECT_TRUE(c.zero_optimization.stage3_gather_16bit_weights_on_model_save);
  EXPECT_TRUE(has_warning(c, "use stage3_gather_16bit_weights_on_model_save instead"));
}

TEST(ConfigLegacy, Bfloat16SectionName) {
  const auto c = parse_config(legacy_config_with(R"("bfloat16": {"enabled": true})"), 1);
  EXPECT_TRUE(c.bf16.enabled);
  EXPECT_TRUE(has_warning(c, "bfloat16: deprecated; use \"bf16\" instead"));
  EXPECT_EQ(config_error(legacy_config_with(R"("bfloat16": {"enabled": true, "x": 1})")).path(), "bfloat16.x");
}

TEST(ConfigLegacy, ShortAliasesOfStage3KeysAreAccepted) {
  const auto c = parse_config(legacy_config_with(R"("zero_optimization": {"stage": 3, "prefetch_bucket_size": 1e6,
      "param_persistence_threshold": 10, "model_persistence_threshold": 20, "max_live_parameters": 30,
      "max_reuse_distance": 40, "gather_16bit_weights_on_model_save": true, "module_granularity_threshold": 7})"),
                              1);
  const ZeroConfig& z = c.zero_optimization;
  EXPECT_EQ(z.stage3_prefetch_bucket_size, 1000000);
  EXPECT_EQ(z.stage3_param_persistence_threshold, 10);
  EXPECT_EQ(z.stage3_model_persistence_threshold, 20);
  EXPECT_EQ(z.stage3_max_live_parameters, 30);
  EXPECT_EQ(z.stage3_max_reuse_distance, 40);
  EXPECT_TRUE(z.stage3_gather_16bit_weights_on_model_save);
  EXPECT_EQ(z.other["stage3_module_granularity_threshold"], 7);
  // Both are DeepSpeed field names (pydantic alias + name), so neither is deprecated.
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_EQ(config_error(legacy_config_with(R"("zero_optimization": {"prefetch_bucket_size": 1, "stage3_prefetch_bucket_size": 2})"))
                .path(),
            "zero_optimization.prefetch_bucket_size");
}

TEST(ConfigLegacy, OptimizerSpellings) {
  const auto c = parse_config(legacy_config_with(R"("optimizer": {"type": "OnebitAdam"})"), 1);
  EXPECT_EQ(c.optimizer->type, "OnebitAdam");
  EXPECT_TRUE(has_warning(c, "optimizer.type: \"OnebitAdam\" is a legacy spelling of OneBitAdam"));
  EXPECT_TRUE(parse_config(legacy_config_with(R"("optimizer": {"type": "adam"})"), 1).warnings.empty());
}

}  // namespace
}  // namespace deepspeed
