#include "config/top_level_keys.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <deepspeed/errors.h>

#include "config/json_values.h"
#include "config/nearest_key.h"

namespace deepspeed::config_detail {

const std::vector<std::string_view>& known_top_level_keys() {
  static const std::vector<std::string_view> keys = {
      // batch
      "train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
      "managed_gradient_accumulation",
      // optimizer, schedule, precision, ZeRO
      "optimizer", "scheduler", "fp16", "bf16", "bfloat16", "amp", "torch_autocast", "zero_optimization",
      "zero_allow_untested_optimizer", "zero_force_ds_cpu_optimizer", "data_types",
      // gradients and communication
      "gradient_clipping", "prescale_gradients", "gradient_predivide_factor", "gradient_allreduce_op",
      "communication_data_type", "seq_parallel_communication_data_type", "sparse_gradients",
      "disable_allgather", "allgather_size",
      // logging and monitoring
      "steps_per_print", "wall_clock_breakdown", "memory_breakdown", "dump_state", "log_level", "timers",
      "tensorboard", "csv_monitor", "wandb", "comet", "trackio", "flops_profiler", "comms_logger",
      // checkpoints, data, memory
      "checkpoint", "activation_checkpointing", "aio", "dataloader_drop_last", "vocabulary_size",
      // parallelism and features outside deepspeed-cpp's core: accepted, kept in `raw`
      "pipeline", "elasticity", "progressive_layer_drop", "sparse_attention", "hybrid_engine", "compile",
      "tensor_parallel", "expert_parallel", "autotuning", "compression_training", "quantize_training",
      "data_efficiency", "curriculum_learning", "nebula", "datastates", "weight_quantization",
      "graph_harvesting", "use_data_before_expert_parallelism", "sequence_parallel_size",
      "data_parallel_size", "eigenvalue",
      // deepspeed-cpp's own (DeepSpeed ignores unknown top-level keys, so configs stay portable)
      "nonfinite_gradients"};
  return keys;
}

void check_top_level_keys(const nlohmann::json& config, WarningLog& warnings) {
  const auto& known = known_top_level_keys();
  std::vector<std::string> autos;
  for (const auto& [key, value] : config.items()) {
    const bool is_known = std::find(known.begin(), known.end(), key) != known.end();
    if (!is_known) {
      warnings.add(key, fmt::format("unknown top-level key, ignored (the nearest known key is \"{}\")",
                                    nearest_key(key, known)));
    } else if (is_auto(value)) {
      autos.push_back(key);
    }
  }
  if (autos.empty()) return;
  std::string message =
      "\"auto\" is a template value that Hugging Face Transformers/Accelerate replace with a real value "
      "before DeepSpeed reads the config; DeepSpeed cannot use it at the top level. Write the value "
      "itself";
  if (autos.size() > 1) {
    message += fmt::format(" (also \"auto\": {})", fmt::join(autos.begin() + 1, autos.end(), ", "));
  }
  throw ConfigError(autos.front(), message);
}

}  // namespace deepspeed::config_detail
