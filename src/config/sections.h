// One reader per modelled ds_config section. Each takes the section's JSON value (null when
// the key is absent), checks every key and type, and returns the typed section with
// DeepSpeed's defaults filled in. Cross-section checks live in deepspeed_config.cpp.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <deepspeed/config.h>

#include "config/section_reader.h"

namespace deepspeed::config_detail {

// sections_precision.cpp
Fp16Config read_fp16(const nlohmann::json& value);
// `path` is "bf16", or "bfloat16" when only the legacy name was written.
Bf16Config read_bf16(const nlohmann::json& value, const std::string& path);
AmpConfig read_amp(const nlohmann::json& value);
TorchAutocastConfig read_torch_autocast(const nlohmann::json& value);
DataTypesConfig read_data_types(const nlohmann::json& value);

// sections_zero.cpp. `allgather_size` is the legacy top-level key that the boolean form
// `"zero_optimization": true` takes its bucket size from.
ZeroConfig read_zero(const nlohmann::json& value, int64_t allgather_size, WarningLog& warnings);

// sections_optimizer.cpp. Both return nullopt when the section is absent, null, or has no
// "type" (DeepSpeed then configures no optimizer/scheduler from the file).
std::optional<OptimizerConfig> read_optimizer(const nlohmann::json& value, WarningLog& warnings);
std::optional<SchedulerConfig> read_scheduler(const nlohmann::json& value, WarningLog& warnings);

// sections_monitoring.cpp: tensorboard / csv_monitor, wandb / comet / trackio, flops_profiler,
// comms_logger, timers.
MonitorConfig read_monitor(const nlohmann::json& value, const std::string& path);
WandbConfig read_wandb(const nlohmann::json& value);
CometConfig read_comet(const nlohmann::json& value);
TrackioConfig read_trackio(const nlohmann::json& value);
FlopsProfilerConfig read_flops_profiler(const nlohmann::json& value);
CommsLoggerConfig read_comms_logger(const nlohmann::json& value);
ThroughputTimerConfig read_timers(const nlohmann::json& value);

// sections_checkpoint.cpp
CheckpointConfig read_checkpoint(const nlohmann::json& value);

// sections_activation_checkpointing.cpp
ActivationCheckpointingConfig read_activation_checkpointing(const nlohmann::json& value);

// sections_pipeline.cpp
PipelineConfig read_pipeline(const nlohmann::json& value);
// sections_tensor_parallel.cpp
TensorParallelConfig read_tensor_parallel(const nlohmann::json& value);

// sections_aio.cpp
AioConfig read_aio(const nlohmann::json& value, WarningLog& warnings);

}  // namespace deepspeed::config_detail
