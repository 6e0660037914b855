// Validation: types, unknown keys, "auto", optimizer/scheduler names, precision and the
// other value checks DeepSpeed makes, each error naming its key path.
#include <gtest/gtest.h>

#include <deepspeed/config.h>

#include "test_helpers.h"

namespace deepspeed {
namespace {

using testing::config_error;
using testing::has_warning;

// `section` spliced into a config that is otherwise valid.
std::string with(const std::string& section) { return "{\"train_batch_size\": 8, " + section + "}"; }

TEST(ConfigTypes, WrongTypesNameThePath) {
  EXPECT_STREQ(config_error(with(R"("fp16": {"enabled": "yes"})")).what(),
               "fp16.enabled: expected true or false, got \"yes\" (at ds_config.json:1:34)");
  EXPECT_EQ(config_error(with(R"("wall_clock_breakdown": 1)")).path(), "wall_clock_breakdown");
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"stage": "2"})")).path(), "zero_optimization.stage");
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"reduce_bucket_size": 5.5})")).path(),
            "zero_optimization.reduce_bucket_size");
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"reduce_bucket_size": -1})")).path(),
            "zero_optimization.reduce_bucket_size");
  EXPECT_EQ(config_error(with(R"("gradient_clipping": "1.0")")).path(), "gradient_clipping");
  EXPECT_EQ(config_error(with(R"("gradient_clipping": -1)")).path(), "gradient_clipping");
  EXPECT_EQ(config_error(with(R"("fp16": true)")).path(), "fp16");
  EXPECT_EQ(config_error(with(R"("tensorboard": {"output_path": 3})")).path(), "tensorboard.output_path");
  EXPECT_EQ(config_error(with(R"("comms_logger": {"prof_ops": ["all_reduce", 1]})")).path(), "comms_logger.prof_ops[1]");
  EXPECT_EQ(config_error(with(R"("wandb": {"project": 1})")).path(), "wandb.project");
  EXPECT_EQ(config_error(with(R"("comet": {"online": "yes"})")).path(), "comet.online");
  EXPECT_EQ(config_error(with(R"("comet": {"samples_log_interval": 1.5})")).path(), "comet.samples_log_interval");
  EXPECT_EQ(config_error(with(R"("trackio": {"enabled": 1})")).path(), "trackio.enabled");
  EXPECT_EQ(config_error(with(R"("wandb": {"entity": "x"})")).path(), "wandb.entity");  // unknown in the section
  EXPECT_EQ(config_error(with(R"("optimizer": {"type": "Adam", "params": [1]})")).path(), "optimizer.params");
  EXPECT_EQ(config_error(with(R"("steps_per_print": -1)")).path(), "steps_per_print");
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"stage": 4})")).path(), "zero_optimization.stage");
  EXPECT_STREQ(config_error(R"({"train_batch_size": 1e30})").what(),
               "train_batch_size: expected a positive integer that fits in 64 bits, got 1e+30 (at ds_config.json:1:2)");
  EXPECT_EQ(config_error(R"({"train_batch_size": 18446744073709551615})").path(), "train_batch_size");
}

// Ours (docs/reliability.md): what an fp32 step with NaN/inf gradients does.
TEST(ConfigValues, NonfiniteGradientsIsErrorSkipOrApply) {
  EXPECT_EQ(parse_config(with(R"("steps_per_print": 1)"), 1).nonfinite_gradients, "error");
  const auto c = parse_config(with(R"("nonfinite_gradients": "Skip")"), 1);
  EXPECT_EQ(c.nonfinite_gradients, "skip");
  EXPECT_TRUE(c.warnings.empty()) << "a key of ours must not be reported as unknown";
  EXPECT_EQ(c.to_json().at("nonfinite_gradients"), "skip");
  EXPECT_STREQ(config_error(with(R"("nonfinite_gradients": "ignore")")).what(),
               "nonfinite_gradients: expected \"error\", \"skip\" or \"apply\", got \"ignore\" "
               "(at ds_config.json:1:25)");
  EXPECT_EQ(config_error(with(R"("nonfinite_gradients": false)")).path(), "nonfinite_gradients");
}

TEST(ConfigKeys, UnknownTopLevelKeyIsAWarningNamingTheNearestKey) {
  const auto c = parse_config("{\"train_batch_size\": 8,\n \"gradient_cliping\": 1.0}", 1, "ds_config.json");
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0],
            "gradient_cliping: unknown top-level key, ignored (the nearest known key is \"gradient_clipping\") "
            "(at ds_config.json:2:2)");
  EXPECT_EQ(c.gradient_clipping, 0.0);
}

TEST(ConfigKeys, UnknownSectionKeyIsAnErrorNamingTheNearestKey) {
  auto e = config_error(with(R"("zero_optimization": {"stage": 3, "stage3_param_persitance_threshold": 1e5})"));
  EXPECT_EQ(e.path(), "zero_optimization.stage3_param_persitance_threshold");
  EXPECT_NE(std::string(e.what()).find("unknown key; the nearest known key is \"stage3_param_persistence_threshold\""),
            std::string::npos)
      << e.what();
  // Small sections also list what they accept.
  auto b = config_error(with(R"("bf16": {"enabled": true, "immediate_grad_updates": true})"));
  EXPECT_EQ(b.path(), "bf16.immediate_grad_updates");
  EXPECT_NE(std::string(b.what()).find("bf16 accepts: enabled, immediate_grad_update"), std::string::npos) << b.what();
  // fp16's loss-scaling keys in bf16 get an error that says why they do not belong there.
  auto l = config_error(with(R"("bf16": {"enabled": true, "loss_scale": 0, "hysteresis": 2})"));
  EXPECT_EQ(l.path(), "bf16.hysteresis");
  EXPECT_NE(std::string(l.what()).find("loss scaling is fp16-only"), std::string::npos) << l.what();
  // grad_hooks is in DeepSpeed's docs but not its code (docs/compatibility.md).
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"grad_hooks": true})")).path(), "zero_optimization.grad_hooks");
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"offload_optimizer": {"device": "cpu", "pin": true}})")).path(),
            "zero_optimization.offload_optimizer.pin");
}

TEST(ConfigKeys, AllUnknownKeysOfASectionInOneMessage) {
  auto e = config_error(with(R"("fp16": {"enabled": true, "opt_level": "O2", "fp16_scale_tolerance": 0.25})"));
  EXPECT_EQ(e.path(), "fp16.fp16_scale_tolerance");
  EXPECT_NE(std::string(e.what()).find("also unknown: fp16.opt_level"), std::string::npos) << e.what();
}

TEST(ConfigAuto, TopLevelAutoIsAnErrorThatSaysWhy) {
  auto e = config_error(R"({"train_batch_size": "auto", "gradient_clipping": "auto", "fp16": {"enabled": true}})");
  EXPECT_EQ(e.path(), "gradient_clipping");  // reported in key order, all of them
  const std::string what = e.what();
  EXPECT_NE(what.find("template value that Hugging Face Transformers/Accelerate replace"), std::string::npos) << what;
  EXPECT_NE(what.find("(also \"auto\": train_batch_size)"), std::string::npos) << what;
}

TEST(ConfigAuto, AutoInsideASectionMeansTheDefault) {
  const auto c = parse_config(with(R"("fp16": {"enabled": "auto", "loss_scale_window": "auto"},
      "zero_optimization": {"stage": 3, "reduce_bucket_size": "auto", "offload_param": {"device": "cpu", "buffer_count": "auto"}},
      "optimizer": {"type": "AdamW", "params": {"lr": "auto", "eps": 1e-6}},
      "scheduler": {"type": "WarmupLR", "params": {"warmup_max_lr": "auto"}})"),
                              1);
  EXPECT_FALSE(c.fp16.enabled);
  EXPECT_EQ(c.fp16.loss_scale_window, 1000);
  EXPECT_EQ(c.zero_optimization.reduce_bucket_size, 500000000);
  EXPECT_EQ(c.zero_optimization.offload_param->buffer_count, 5);
  EXPECT_EQ(c.optimizer->params, nlohmann::json({{"eps", 1e-6}}));
  EXPECT_TRUE(c.scheduler->params.empty());
}

TEST(ConfigOptimizer, DeepSpeedNamesInAnyCaseTorchNamesExactly) {
  for (const char* type : {"Adam", "adam", "ADAMW", "Lamb", "OneBitAdam", "ZeroOneAdam", "OneBitLamb", "Lion", "Muon",
                           "SGD", "RMSprop", "Adagrad", "adagrad", "RAdam"}) {
    const auto c = parse_config(with(std::string(R"("optimizer": {"type": ")") + type + "\"}"), 1);
    EXPECT_EQ(c.optimizer->type, type);
  }
  EXPECT_EQ(canonical_optimizer_name("OnebitAdam"), "onebitadam");
  EXPECT_EQ(canonical_optimizer_name("SGD"), "SGD");
  EXPECT_EQ(canonical_optimizer_name("sgd"), std::nullopt);
}

TEST(ConfigOptimizer, UnknownTypeListsWhatIsSupported) {
  auto e = config_error(with(R"("optimizer": {"type": "sgd"})"));
  EXPECT_EQ(e.path(), "optimizer.type");
  const std::string what = e.what();
  EXPECT_EQ(what.rfind("optimizer.type: sgd is not a supported DeepSpeed Optimizer (nearest: \"SGD\")", 0), 0u) << what;
  EXPECT_NE(what.find("OneBitAdam"), std::string::npos);
  EXPECT_NE(what.find("RMSprop"), std::string::npos);
}

TEST(ConfigOptimizer, MaxGradNormIsRejected) {
  auto e = config_error(with(R"("optimizer": {"type": "Adam", "params": {"lr": 1e-3, "max_grad_norm": 1.0}})"));
  EXPECT_EQ(e.path(), "optimizer.params.max_grad_norm");
  EXPECT_NE(std::string(e.what()).find("'max_grad_norm' is not supported as an optimizer parameter, please switch to "
                                       "using the deepspeed parameter 'gradient_clipping'"),
            std::string::npos);
}

TEST(ConfigOptimizer, OptimizerWithoutTypeConfiguresNone) {
  const auto c = parse_config(with(R"("optimizer": {"params": {"lr": 1}})"), 1);
  EXPECT_FALSE(c.optimizer);
  EXPECT_TRUE(has_warning(c, "optimizer: has no \"type\""));
}

TEST(ConfigOptimizer, CombinationsDeepSpeedRejects) {
  EXPECT_STREQ(config_error(with(R"("optimizer": {"type": "Lamb"}, "fp16": {"enabled": true, "loss_scale": 128})")).what(),
               "optimizer.type: DeepSpeed lamb optimizer requires dynamic loss scaling (at ds_config.json:1:39)");
  EXPECT_NE(std::string(config_error(with(R"("optimizer": {"type": "OneBitAdam"}, "zero_optimization": {"stage": 1})"))
                            .what())
                .find("1bit-Adam is not compatible with ZeRO"),
            std::string::npos);
  for (const char* type : {"ZeroOneAdam", "OneBitLamb"}) {
    EXPECT_NE(std::string(config_error(with(std::string(R"("optimizer": {"type": ")") + type +
                                            R"("}, "zero_optimization": {"stage": 2})"))
                              .what())
                  .find("is not compatible with ZeRO"),
              std::string::npos)
        << type;
  }
  EXPECT_STREQ(
      config_error(with(R"("optimizer": {"type": "OneBitLamb"}, "fp16": {"enabled": true, "loss_scale": 128})")).what(),
      "optimizer.type: DeepSpeed onebitlamb optimizer requires dynamic loss scaling (at ds_config.json:1:39)");
}

TEST(ConfigScheduler, KnownTypes) {
  for (const char* type : {"LRRangeTest", "OneCycle", "WarmupLR", "WarmupDecayLR", "WarmupCosineLR", "StepLR",
                           "CosineAnnealingLR"}) {
    EXPECT_EQ(parse_config(with(std::string(R"("scheduler": {"type": ")") + type + "\"}"), 1).scheduler->type, type);
  }
}

TEST(ConfigScheduler, UnknownTypeUsesDeepSpeedsMessage) {
  auto e = config_error(with(R"("scheduler": {"type": "WarmupLr"})"));
  EXPECT_EQ(e.path(), "scheduler.type");
  const std::string what = e.what();
  EXPECT_EQ(what.rfind("scheduler.type: DeepSpeed does not recognize LR scheduler WarmupLr (nearest: \"WarmupLR\")", 0),
            0u)
      << what;
}

TEST(ConfigPrecision, Fp16AndBf16Together) {
  auto e = config_error(with(R"("fp16": {"enabled": true}, "bf16": {"enabled": true})"));
  EXPECT_EQ(e.path(), "bf16.enabled");
  EXPECT_NE(std::string(e.what()).find("bfloat16 and fp16 modes cannot be simultaneously enabled"), std::string::npos);
}

TEST(ConfigPrecision, LossScaleValidator) {
  EXPECT_STREQ(config_error(with(R"("fp16": {"loss_scale": true})")).what(),
               "fp16.loss_scale: must be a number, not bool (at ds_config.json:1:34)");
  EXPECT_STREQ(config_error(with(R"("fp16": {"loss_scale": "big"})")).what(),
               "fp16.loss_scale: must be a number (at ds_config.json:1:34)");
  EXPECT_STREQ(config_error(with(R"("fp16": {"loss_scale": "inf"})")).what(),
               "fp16.loss_scale: must be a finite number (not inf/-inf/nan) (at ds_config.json:1:34)");
  EXPECT_STREQ(config_error(with(R"("fp16": {"loss_scale": -1})")).what(),
               "fp16.loss_scale: must be >= 0 (0 enables dynamic loss scaling) (at ds_config.json:1:34)");
  // JSON has no infinity; a literal past double's range is refused by the JSON reader.
  EXPECT_STREQ(config_error(with(R"("fp16": {"loss_scale": 1e999})")).what(),
               "ds_config.json:1:52: syntax error: number overflow parsing '1e999'");
  // Numeric strings are numbers, as Python's float() reads them.
  EXPECT_EQ(parse_config(with(R"("fp16": {"enabled": true, "loss_scale": "1024"})"), 1).fp16.loss_scale, 1024.0);
}

TEST(ConfigPrecision, DynamicScalingNeedsPositiveWindowAndMinimum) {
  EXPECT_STREQ(config_error(with(R"("fp16": {"enabled": true, "loss_scale_window": 0})")).what(),
               "fp16.loss_scale_window: must be > 0 when dynamic loss scaling is enabled (loss_scale=0) "
               "(at ds_config.json:1:51)");
  EXPECT_STREQ(config_error(with(R"("fp16": {"enabled": true, "min_loss_scale": -1})")).what(),
               "fp16.min_loss_scale: must be > 0 when dynamic loss scaling is enabled (loss_scale=0) "
               "(at ds_config.json:1:51)");
  EXPECT_EQ(config_error(with(R"("fp16": {"enabled": true, "min_loss_scale": 0.5})")).path(), "fp16.min_loss_scale");
  EXPECT_EQ(config_error(with(R"("fp16": {"enabled": true, "loss_scale_window": "x"})")).path(),
            "fp16.loss_scale_window");
  // Not checked when unused: fp16 off, or a static scale.
  EXPECT_NO_THROW(parse_config(with(R"("fp16": {"enabled": false, "loss_scale_window": 0})"), 1));
  EXPECT_NO_THROW(parse_config(with(R"("fp16": {"enabled": true, "loss_scale": 128, "min_loss_scale": 0})"), 1));
}

TEST(ConfigPrecision, MasterWeightsNeedZero) {
  EXPECT_EQ(config_error(with(R"("fp16": {"enabled": true, "fp16_master_weights_and_grads": true})")).path(),
            "fp16.fp16_master_weights_and_grads");
  EXPECT_NO_THROW(parse_config(
      with(R"("fp16": {"enabled": true, "fp16_master_weights_and_grads": true}, "zero_optimization": {"stage": 2})"), 1));
  EXPECT_EQ(config_error(with(R"("bf16": {"enabled": true, "bf16_optimizer_states": true, "bf16_master_weights_and_grads": false}, "zero_optimization": {"stage": 1})"))
                .path(),
            "bf16.bf16_optimizer_states");
  EXPECT_EQ(config_error(with(R"("bf16": {"enabled": true, "bf16_master_weights_and_grads": true})")).path(),
            "bf16.bf16_master_weights_and_grads");
}

TEST(ConfigPrecision, AmpIsIncompatibleWithZeroAndFp16) {
  EXPECT_NE(std::string(config_error(with(R"("amp": {"enabled": true}, "zero_optimization": {"stage": 1})")).what())
                .find("Amp and ZeRO are not currently compatible"),
            std::string::npos);
  EXPECT_EQ(config_error(with(R"("amp": {"enabled": true}, "fp16": {"enabled": true})")).path(), "amp.enabled");
  const auto c = parse_config(with(R"("amp": {"enabled": true, "opt_level": "O1"})"), 1);
  EXPECT_TRUE(c.amp.enabled);
  EXPECT_EQ(c.amp.params["opt_level"], "O1");
}

TEST(ConfigPrecision, DataTypesSpellings) {
  const auto c = parse_config(with(R"("data_types": {"grad_accum_dtype": "half", "param_dtype": "torch.bfloat16"})"), 1);
  EXPECT_EQ(c.data_types.grad_accum_dtype, "fp16");
  EXPECT_EQ(c.data_types.param_dtype, "bf16");
  EXPECT_EQ(config_error(with(R"("data_types": {"grad_accum_dtype": "fp8"})")).path(), "data_types.grad_accum_dtype");
}

TEST(ConfigCommunication, AllreduceOp) {
  EXPECT_EQ(parse_config(with(R"("gradient_allreduce_op": "SUM")"), 1).gradient_allreduce_op, "sum");
  EXPECT_STREQ(config_error(with(R"("gradient_allreduce_op": "max")")).what(),
               "gradient_allreduce_op: Invalid gradient_allreduce_op. Supported operations: ['mean', 'sum']. "
               "Got: 'max' (at ds_config.json:1:25)");
  EXPECT_STREQ(config_error(with(R"("gradient_allreduce_op": "sum", "zero_optimization": {"stage": 3})")).what(),
               "gradient_allreduce_op: gradient_allreduce_op='sum' is not supported with ZeRO stage 3 "
               "(at ds_config.json:1:25)");
}

TEST(ConfigCommunication, DataType) {
  EXPECT_EQ(parse_config(with(R"("communication_data_type": "BF16")"), 1).communication_data_type, "bf16");
  EXPECT_STREQ(config_error(with(R"("communication_data_type": "FP8")")).what(),
               "communication_data_type: Invalid communication_data_type. Supported data types: ['fp16', 'bf16', "
               "'fp32']. Got: fp8 (at ds_config.json:1:25)");
  EXPECT_EQ(config_error(with(R"("seq_parallel_communication_data_type": "int8")")).path(),
            "seq_parallel_communication_data_type");
}

TEST(ConfigCheckpoint, TagValidation) {
  EXPECT_EQ(parse_config(with(R"("checkpoint": {"tag_validation": "ignore"})"), 1).checkpoint.tag_validation, "IGNORE");
  EXPECT_STREQ(config_error(with(R"("checkpoint": {"tag_validation": "strict"})")).what(),
               "checkpoint.tag_validation: Checkpoint config contains invalid tag_validation value of STRICT, "
               "expecting one of ['WARN', 'IGNORE', 'FAIL'] (at ds_config.json:1:40)");
  EXPECT_EQ(config_error(with(R"("checkpoint": {"parallel_write": {"pipeline_stage": 1}})")).path(),
            "checkpoint.parallel_write.pipeline_stage");
}

TEST(ConfigZero, OffloadChecks) {
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"stage": 3, "offload_param": {"device": "gpu"}})")).path(),
            "zero_optimization.offload_param.device");
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"stage": 3, "offload_param": {"device": "nvme"}})")).path(),
            "zero_optimization.offload_param.nvme_path");
  EXPECT_NE(std::string(config_error(with(R"("zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu", "ratio": 0.5}})"))
                            .what())
                .find("Partial offloading only supported for ZeRO Stage 3."),
            std::string::npos);
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"stage": 3, "offload_optimizer": {"ratio": 1.5}})")).path(),
            "zero_optimization.offload_optimizer.ratio");
  const auto c = parse_config(with(R"("zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}})"), 1);
  EXPECT_TRUE(has_warning(c, "zero_optimization.offload_param: parameter offload is only done by ZeRO stage 3"));
  EXPECT_EQ(config_error(with(R"("zero_optimization": {"legacy_stage1": true})")).path(), "zero_optimization.legacy_stage1");
}

TEST(ConfigMisc, LogLevelAndVocabulary) {
  EXPECT_EQ(parse_config(with(R"("log_level": "INFO")"), 1).log_level, "info");
  EXPECT_EQ(config_error(with(R"("log_level": "loud")")).path(), "log_level");
  EXPECT_TRUE(has_warning(parse_config(with(R"("vocabulary_size": 50257)"), 1), "not a multiple of 8"));
}

TEST(ConfigMisc, ManagedAccumulationWithOverlapComm) {
  EXPECT_EQ(config_error(with(R"("managed_gradient_accumulation": false, "zero_optimization": {"stage": 3})")).path(),
            "managed_gradient_accumulation");
  EXPECT_NO_THROW(parse_config(
      with(R"("managed_gradient_accumulation": false, "zero_optimization": {"stage": 2, "overlap_comm": true})"), 1));
}

TEST(ConfigValues, AioSizesAndKeys) {
  EXPECT_EQ(config_error(with(R"("aio": {"block_size": 0})")).path(), "aio.block_size");
  EXPECT_EQ(config_error(with(R"("aio": {"queue_depth": -1})")).path(), "aio.queue_depth");
  EXPECT_EQ(config_error(with(R"("aio": {"intra_op_parallelism": 0})")).path(), "aio.intra_op_parallelism");
  EXPECT_EQ(config_error(with(R"("aio": {"single_submit": "no"})")).path(), "aio.single_submit");
  EXPECT_EQ(config_error(with(R"("aio": {"queue_dept": 4})")).path(), "aio.queue_dept");
  EXPECT_STREQ(config_error(with(R"("aio": {"thread_count": 2, "intra_op_parallelism": 2})")).what(),
               "aio.thread_count: give either \"intra_op_parallelism\" or its documentation name \"thread_count\", "
               "not both (at ds_config.json:1:33)");
}

}  // namespace
}  // namespace deepspeed
