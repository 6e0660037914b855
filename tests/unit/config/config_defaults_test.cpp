// Defaults (DeepSpeed's, except where docs/compatibility.md says otherwise) and the resolved JSON.
#include <gtest/gtest.h>

#include <deepspeed/config.h>

#include "test_helpers.h"

namespace deepspeed {
namespace {

TEST(ConfigDefaults, EveryKeyHasDeepSpeedsDefault) {
  const auto c = parse_config(R"({"train_batch_size": 8})", 2);
  EXPECT_EQ(c.train_batch_size, 8);
  EXPECT_EQ(c.train_micro_batch_size_per_gpu, 4);
  EXPECT_EQ(c.gradient_accumulation_steps, 1);
  EXPECT_EQ(c.world_size, 2);
  EXPECT_TRUE(c.warnings.empty());

  // docs/compatibility.md, "Defaults": 10, not DeepSpeed 0.19's None; 0.0, not 0.19.3's 1.0.
  EXPECT_EQ(c.steps_per_print, 10);
  EXPECT_EQ(c.gradient_clipping, 0.0);

  EXPECT_FALSE(c.optimizer);
  EXPECT_FALSE(c.scheduler);
  EXPECT_FALSE(c.fp16.enabled);
  EXPECT_FALSE(c.fp16.auto_cast);
  EXPECT_EQ(c.fp16.loss_scale, 0.0);
  EXPECT_EQ(c.fp16.initial_scale_power, 16);
  EXPECT_EQ(c.fp16.loss_scale_window, 1000);
  EXPECT_EQ(c.fp16.hysteresis, 2);
  EXPECT_FALSE(c.fp16.consecutive_hysteresis);
  EXPECT_EQ(c.fp16.min_loss_scale, 1.0);
  EXPECT_FALSE(c.bf16.enabled);
  EXPECT_TRUE(c.bf16.check_grad_overflow);
  EXPECT_FALSE(c.amp.enabled);

  const ZeroConfig& z = c.zero_optimization;
  EXPECT_EQ(z.stage, 0);
  EXPECT_TRUE(z.contiguous_gradients);
  EXPECT_FALSE(z.overlap_comm_enabled());
  EXPECT_TRUE(z.reduce_scatter);
  EXPECT_EQ(z.reduce_bucket_size, 500000000);
  EXPECT_EQ(z.allgather_bucket_size, 500000000);
  EXPECT_FALSE(z.offload_optimizer);
  EXPECT_FALSE(z.offload_param);
  EXPECT_EQ(z.sub_group_size, 1000000000);
  EXPECT_EQ(z.stage3_prefetch_bucket_size, 50000000);
  EXPECT_EQ(z.stage3_param_persistence_threshold, 100000);
  EXPECT_EQ(z.stage3_model_persistence_threshold, INT64_MAX);
  EXPECT_EQ(z.stage3_max_live_parameters, 1000000000);
  EXPECT_EQ(z.stage3_max_reuse_distance, 1000000000);
  EXPECT_FALSE(z.stage3_gather_16bit_weights_on_model_save);
  EXPECT_EQ(z.other.at("zero_hpz_partition_size"), 1);
  EXPECT_EQ(z.other.at("mics_shard_size"), -1);
  EXPECT_EQ(z.other.at("memory_efficient_linear"), true);
  EXPECT_EQ(z.other.at("zero_quantized_weights"), false);

  EXPECT_FALSE(c.prescale_gradients);
  EXPECT_EQ(c.gradient_predivide_factor, 1.0);
  EXPECT_EQ(c.gradient_allreduce_op, "mean");
  EXPECT_FALSE(c.communication_data_type);
  EXPECT_EQ(c.resolved_communication_data_type(), "fp32");
  EXPECT_EQ(c.seq_parallel_communication_data_type, "fp32");
  EXPECT_TRUE(c.managed_gradient_accumulation);
  EXPECT_FALSE(c.zero_allow_untested_optimizer);
  EXPECT_TRUE(c.zero_force_ds_cpu_optimizer);
  EXPECT_TRUE(c.throughput_timer.enabled);
  EXPECT_TRUE(c.throughput_timer.synchronized);
  EXPECT_FALSE(c.tensorboard.enabled);
  EXPECT_EQ(c.csv_monitor.job_name, "DeepSpeedJobName");
  EXPECT_EQ(c.flops_profiler.profile_step, 1);
  EXPECT_EQ(c.flops_profiler.module_depth, -1);
  EXPECT_TRUE(c.comms_logger.prof_all);
  EXPECT_FALSE(c.wandb.enabled);
  EXPECT_EQ(c.wandb.project, "deepspeed");
  EXPECT_FALSE(c.wandb.team);
  EXPECT_EQ(c.comet.samples_log_interval, 100);
  EXPECT_FALSE(c.comet.online);
  EXPECT_EQ(c.trackio.project, "deepspeed");
  EXPECT_FALSE(c.wall_clock_breakdown);
  EXPECT_EQ(c.checkpoint.tag_validation, "WARN");
  EXPECT_TRUE(c.checkpoint.checkpoint_serialization);
  EXPECT_FALSE(c.data_types.grad_accum_dtype);
}

TEST(ConfigDefaults, TheFlopsProfilerTurnsWallClockBreakdownOn) {
  // As DeepSpeed: its summary needs the engine's phase timings.
  const auto c = parse_config(R"({"train_batch_size": 1, "flops_profiler": {"enabled": true}})", 1);
  EXPECT_TRUE(c.wall_clock_breakdown);
  EXPECT_TRUE(c.to_json()["wall_clock_breakdown"]);
}

TEST(ConfigDefaults, OnlineMonitorsAreReadWithTheirKeys) {
  const auto c = parse_config(R"({"train_batch_size": 1, "wandb": {"enabled": false, "group": "g", "team": "t"},
      "comet": {"samples_log_interval": 5, "online": false, "mode": "get"}, "trackio": {"project": "p"}})", 1);
  EXPECT_EQ(c.wandb.group, "g");
  EXPECT_EQ(c.comet.samples_log_interval, 5);
  EXPECT_EQ(c.comet.online, false);
  EXPECT_EQ(c.comet.mode, "get");
  EXPECT_EQ(c.trackio.project, "p");
  EXPECT_TRUE(c.warnings.empty()) << "trackio is a known top-level key";
  const auto j = c.to_json();
  EXPECT_EQ(j["wandb"]["team"], "t");
  EXPECT_EQ(j["comet"]["online"], false);
  EXPECT_EQ(j["trackio"]["enabled"], false);
}

TEST(ConfigDefaults, OverlapCommFollowsTheStage) {
  EXPECT_TRUE(parse_config(R"({"train_batch_size": 1, "zero_optimization": {"stage": 3}})", 1)
                  .zero_optimization.overlap_comm_enabled());
  EXPECT_FALSE(parse_config(R"({"train_batch_size": 1, "zero_optimization": {"stage": 2}})", 1)
                   .zero_optimization.overlap_comm_enabled());
  EXPECT_FALSE(parse_config(R"({"train_batch_size": 1, "zero_optimization": {"stage": 3, "overlap_comm": false}})", 1)
                   .zero_optimization.overlap_comm_enabled());
}

TEST(ConfigDefaults, CommunicationTypeFollowsPrecision) {
  EXPECT_EQ(parse_config(R"({"train_batch_size": 1, "fp16": {"enabled": true}})", 1).resolved_communication_data_type(),
            "fp16");
  EXPECT_EQ(parse_config(R"({"train_batch_size": 1, "bf16": {"enabled": true}})", 1).resolved_communication_data_type(),
            "bf16");
  EXPECT_EQ(parse_config(R"({"train_batch_size": 1, "bf16": {"enabled": true}, "communication_data_type": "FP32"})", 1)
                .resolved_communication_data_type(),
            "fp32");
}

TEST(ConfigDefaults, StepsPerPrintZeroAndNullMeanNever) {
  EXPECT_EQ(parse_config(R"({"train_batch_size": 1, "steps_per_print": 0})", 1).steps_per_print, 0);
  EXPECT_EQ(parse_config(R"({"train_batch_size": 1, "steps_per_print": null})", 1).steps_per_print, 0);
  // 64-bit counts: a value real configs use.
  EXPECT_EQ(parse_config(R"({"train_batch_size": 1, "steps_per_print": 20000000000000000})", 1).steps_per_print,
            20000000000000000);
  EXPECT_EQ(parse_config(R"({"train_batch_size": 1, "steps_per_print": 1e5})", 1).steps_per_print, 100000);
}

TEST(ConfigDefaults, ToJsonHasEveryDefault) {
  const auto j = parse_config(R"({"train_batch_size": 8})", 1).to_json();
  for (const char* key : {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                          "optimizer", "scheduler", "fp16", "bf16", "zero_optimization", "gradient_clipping",
                          "prescale_gradients", "gradient_predivide_factor", "gradient_allreduce_op",
                          "communication_data_type", "steps_per_print", "wall_clock_breakdown", "timers",
                          "tensorboard", "csv_monitor", "wandb", "comet", "trackio", "flops_profiler", "comms_logger", "checkpoint",
                          "data_types", "dataloader_drop_last", "zero_allow_untested_optimizer", "aio"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["steps_per_print"], 10);
  EXPECT_EQ(j["gradient_clipping"], 0.0);
  EXPECT_EQ(j["zero_optimization"]["overlap_comm"], false);
  EXPECT_EQ(j["zero_optimization"]["stage3_model_persistence_threshold"], INT64_MAX);
  EXPECT_EQ(j["fp16"]["initial_scale_power"], 16);
  EXPECT_EQ(j["checkpoint"]["tag_validation"], "WARN");
  EXPECT_EQ(j["timers"]["throughput"]["synchronized"], true);
  EXPECT_EQ(j["aio"], nlohmann::json::parse(R"({"block_size": 1048576, "queue_depth": 8, "intra_op_parallelism": 1,
      "single_submit": false, "overlap_events": true, "use_gds": false})"));
}

TEST(ConfigDefaults, AioHasDeepSpeedsDefaultsAndReadsEveryKey) {
  const auto d = parse_config(R"({"train_batch_size": 8})", 1).aio;
  EXPECT_EQ(d.block_size, 1048576);
  EXPECT_EQ(d.queue_depth, 8);
  EXPECT_EQ(d.intra_op_parallelism, 1);
  EXPECT_FALSE(d.single_submit);
  EXPECT_TRUE(d.overlap_events);
  EXPECT_FALSE(d.use_gds);
  const auto c = parse_config(R"({"train_batch_size": 8, "aio": {"block_size": 262144, "queue_depth": 32,
      "intra_op_parallelism": 2, "single_submit": true, "overlap_events": false, "use_gds": false}})", 1);
  EXPECT_EQ(c.aio.block_size, 262144);
  EXPECT_EQ(c.aio.queue_depth, 32);
  EXPECT_EQ(c.aio.intra_op_parallelism, 2);
  EXPECT_TRUE(c.aio.single_submit);
  EXPECT_FALSE(c.aio.overlap_events);
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
}

TEST(ConfigDefaults, AioThreadCountIsReadAsIntraOpParallelism) {
  // "thread_count" is the name in DeepSpeed's documentation (and in many published configs).
  const auto c = parse_config(R"({"train_batch_size": 8, "aio": {"thread_count": 4}})", 1);
  EXPECT_EQ(c.aio.intra_op_parallelism, 4);
  EXPECT_TRUE(testing::has_warning(c, "aio.thread_count: read as \"intra_op_parallelism\"")) << c.warnings.front();
}

TEST(ConfigDefaults, ToJsonReadsBackToTheSameConfig) {
  const char* text = R"({
    "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2,
    "optimizer": {"type": "AdamW", "params": {"lr": 3e-4, "betas": [0.9, 0.95], "weight_decay": "auto"}},
    "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 10}},
    "bf16": {"enabled": true},
    "zero_optimization": {"stage": 3, "cpu_offload": true, "prefetch_bucket_size": 1e6,
                          "offload_param": {"device": "nvme", "nvme_path": "/local"}},
    "checkpoint": {"tag_validation": "fail"},
    "data_types": {"grad_accum_dtype": "torch.float32"},
    "pipeline": {"stages": "auto"},
    "aio": {"block_size": 1048576}
  })";
  const auto first = parse_config(text, 4);
  const auto j = first.to_json();
  const auto second = config_from_json(j, 4);
  EXPECT_EQ(second.to_json(), j);
  // The pipeline section is read (docs/pipeline.md): nothing to warn about.
  EXPECT_TRUE(second.warnings.empty()) << second.warnings.front();
  EXPECT_EQ(j["optimizer"]["params"].contains("weight_decay"), false);  // "auto": the optimizer's default
  EXPECT_EQ(j["zero_optimization"]["stage3_prefetch_bucket_size"], 1000000);
  EXPECT_EQ(j["zero_optimization"]["offload_optimizer"]["device"], "cpu");
  EXPECT_EQ(j["checkpoint"]["tag_validation"], "FAIL");
  EXPECT_EQ(j["data_types"]["grad_accum_dtype"], "fp32");
  EXPECT_EQ(j["pipeline"]["stages"], "auto");
  EXPECT_EQ(j["pipeline"]["pipe_partitioned"], true);
  EXPECT_EQ(j["aio"]["block_size"], 1048576);
  EXPECT_EQ(j["train_batch_size"], 32);
}

TEST(ConfigDefaults, OutOfCoreSectionsAreAcceptedKeptRawAndWarnedAboutUnlessDisabled) {
  const auto c = parse_config(R"({"train_batch_size": 1,
      "pipeline": {"stages": 2}, "elasticity": {"enabled": false}, "activation_checkpointing": {"partition_activations": true},
      "wandb": {"enabled": false, "project": "x"}, "comet": {"enabled": false}, "aio": {"queue_depth": 8},
      "data_types": {"grad_accum_dtype": "fp32"}, "hybrid_engine": {"enabled": false}, "compile": {"deepcompile": true},
      "tensor_parallel": {"autotp_size": 2}, "sparse_attention": {"mode": "fixed"}, "autotuning": {"enabled": false},
      "compression_training": {}, "quantize_training": {}, "data_efficiency": {}, "curriculum_learning": {},
      "progressive_layer_drop": {"enabled": false}, "torch_autocast": {"enabled": false}, "eigenvalue": {}})",
                              1);
  std::vector<std::string> warned;
  for (const auto& w : c.warnings) warned.push_back(w.substr(0, w.find(':')));
  EXPECT_EQ(warned, (std::vector<std::string>{"compression_training", "quantize_training",
                                              "data_efficiency", "curriculum_learning", "compile", "eigenvalue"}));
  EXPECT_EQ(c.raw["tensor_parallel"]["autotp_size"], 2);
}

TEST(ConfigDefaults, ConfigFromJsonHasNoLocations) {
  auto value = nlohmann::json::parse(R"({"train_batch_size": 1, "cuda_visible_devices": "0"})");
  const auto c = config_from_json(value, 1);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0].find("(at "), std::string::npos);
}

}  // namespace
}  // namespace deepspeed
