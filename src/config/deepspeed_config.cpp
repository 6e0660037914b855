// ds_config.json → DeepSpeedConfig: the order in which sections are read, the top-level
// scalars, the batch triple, and the checks that involve more than one section.
#include <algorithm>

#include <fmt/format.h>

#include <deepspeed/config.h>

#include "config/json_reader.h"
#include "config/json_values.h"
#include "config/section_reader.h"
#include "config/sections.h"
#include "config/top_level_keys.h"
#include "config/unimplemented_sections.h"

namespace deepspeed {
namespace config_detail {
namespace {

const nlohmann::json& section(const nlohmann::json& config, const char* key) {
  static const nlohmann::json kAbsent;  // null: the section was not written
  auto it = config.find(key);
  return it == config.end() ? kAbsent : *it;
}

// communication_data_type and seq_parallel_communication_data_type: case-insensitive, and
// DeepSpeed's message shows the value lower-cased.
std::optional<std::string> read_comm_dtype(const SectionReader& top, const char* key) {
  const auto* v = top.find(key);
  if (!v || v->is_null()) return std::nullopt;
  const std::string dtype = ascii_lower(to_string(*v, key));
  if (dtype != "fp32" && dtype != "fp16" && dtype != "bf16") {
    throw ConfigError(key, fmt::format("Invalid {}. Supported data types: ['fp16', 'bf16', 'fp32']. Got: {}", key, dtype));
  }
  return dtype;
}

void read_scalars(const SectionReader& top, DeepSpeedConfig& c, WarningLog& warnings) {
  c.managed_gradient_accumulation = top.boolean("managed_gradient_accumulation", c.managed_gradient_accumulation);
  if (const auto* v = top.find("gradient_clipping"); v) {
    c.gradient_clipping = to_number(*v, "gradient_clipping");
    if (c.gradient_clipping < 0) throw_expected("gradient_clipping", "a number >= 0 (0 disables clipping)", *v);
  }
  c.prescale_gradients = top.boolean("prescale_gradients", c.prescale_gradients);
  if (const auto* v = top.find("gradient_predivide_factor"); v) {
    c.gradient_predivide_factor = to_number(*v, "gradient_predivide_factor");
    if (c.gradient_predivide_factor <= 0) throw_expected("gradient_predivide_factor", "a number > 0", *v);
  }
  if (const auto* v = top.find("gradient_allreduce_op"); v) {
    const std::string op = ascii_lower(to_string(*v, "gradient_allreduce_op"));
    if (op != "mean" && op != "sum") {
      throw ConfigError("gradient_allreduce_op",
                        fmt::format("Invalid gradient_allreduce_op. Supported operations: ['mean', 'sum']. Got: '{}'",
                                    v->get<std::string>()));
    }
    c.gradient_allreduce_op = op;
  }
  c.communication_data_type = read_comm_dtype(top, "communication_data_type");
  c.seq_parallel_communication_data_type =
      read_comm_dtype(top, "seq_parallel_communication_data_type").value_or(c.seq_parallel_communication_data_type);
  c.sparse_gradients = top.boolean("sparse_gradients", c.sparse_gradients);
  c.disable_allgather = top.boolean("disable_allgather", c.disable_allgather);
  // null is DeepSpeed's current default ("never print"); 0 means the same here.
  if (const auto* v = top.find("steps_per_print"); v) {
    c.steps_per_print = v->is_null() ? 0 : top.integer("steps_per_print", c.steps_per_print, 0);
  }
  c.wall_clock_breakdown = top.boolean("wall_clock_breakdown", c.wall_clock_breakdown);
  c.memory_breakdown = top.boolean("memory_breakdown", c.memory_breakdown);
  c.dump_state = top.boolean("dump_state", c.dump_state);
  if (auto level = top.optional_string("log_level")) {
    const std::string l = ascii_lower(*level);
    if (l != "debug" && l != "info" && l != "warning" && l != "error" && l != "critical") {
      throw ConfigError("log_level", fmt::format("expected one of debug, info, warning, error, critical, got \"{}\"", *level));
    }
    c.log_level = l;
  }
  c.dataloader_drop_last = top.boolean("dataloader_drop_last", c.dataloader_drop_last);
  c.zero_allow_untested_optimizer = top.boolean("zero_allow_untested_optimizer", c.zero_allow_untested_optimizer);
  c.zero_force_ds_cpu_optimizer = top.boolean("zero_force_ds_cpu_optimizer", c.zero_force_ds_cpu_optimizer);
  if (auto action = top.optional_string("nonfinite_gradients")) {
    const std::string a = ascii_lower(*action);
    if (a != "error" && a != "skip" && a != "apply") {
      throw ConfigError("nonfinite_gradients",
                        fmt::format("expected \"error\", \"skip\" or \"apply\", got \"{}\"", *action));
    }
    c.nonfinite_gradients = a;
  }
  if (const auto* v = top.find("vocabulary_size"); v && !v->is_null()) {
    c.vocabulary_size = top.integer("vocabulary_size", 0, 1);
    if (*c.vocabulary_size % 8 != 0) {
      warnings.add("vocabulary_size", fmt::format("{} is not a multiple of 8, which lowers tensor-core "
                                                  "utilization", *c.vocabulary_size));
    }
  }
}

void read_batch(const SectionReader& top, int64_t world_size, DeepSpeedConfig& c) {
  if (world_size <= 0) throw ConfigError("", fmt::format("the world size must be positive, got {}", world_size));
  c.sequence_parallel_size = top.integer("sequence_parallel_size", 1, 1);
  if (world_size % c.sequence_parallel_size != 0) {
    throw ConfigError("sequence_parallel_size", fmt::format("the world size {} is not divisible by {}", world_size,
                                                            c.sequence_parallel_size));
  }
  c.world_size = world_size / c.sequence_parallel_size;

  // null is "not given" (DeepSpeed reads these with dict.get); 0 and negatives reach the
  // batch-size checks so that their messages are DeepSpeed's.
  auto batch_key = [&](const char* key) -> std::optional<int64_t> {
    const auto* v = top.find(key);
    if (!v || v->is_null()) return std::nullopt;
    return to_int(*v, key, "a positive integer");
  };
  const BatchSizes b = resolve_batch_sizes(batch_key("train_batch_size"), batch_key("train_micro_batch_size_per_gpu"),
                                           batch_key("gradient_accumulation_steps"), c.world_size);
  c.train_batch_size = b.train_batch_size;
  c.train_micro_batch_size_per_gpu = b.train_micro_batch_size_per_gpu;
  c.gradient_accumulation_steps = b.gradient_accumulation_steps;
}

// Checks that involve more than one section (docs/config.md, "How a config is read", 7).
void check_combinations(const DeepSpeedConfig& c, const std::string& bf16_path) {
  const int stage = c.zero_stage();
  if (c.fp16.enabled && c.bf16.enabled) {
    throw ConfigError(bf16_path + ".enabled", "bfloat16 and fp16 modes cannot be simultaneously enabled");
  }
  if (c.fp16.enabled && c.fp16.fp16_master_weights_and_grads && stage == 0) {
    throw ConfigError("fp16.fp16_master_weights_and_grads",
                      "Fp16_master_weights_and_grads is only supported with ZeRO Stage 1, 2, or 3.");
  }
  if (c.bf16.enabled && c.bf16.bf16_master_weights_and_grads && stage == 0) {
    throw ConfigError(bf16_path + ".bf16_master_weights_and_grads",
                      "bf16_master_weights_and_grads is only supported with ZeRO Stage 1, 2, or 3.");
  }
  if (c.gradient_allreduce_op == "sum" && stage == 3) {
    throw ConfigError("gradient_allreduce_op", "gradient_allreduce_op='sum' is not supported with ZeRO stage 3");
  }
  if (c.amp.enabled && stage > 0) {
    throw ConfigError("amp.enabled", "Amp and ZeRO are not currently compatible, please use (legacy) fp16 mode "
                                     "which performs similar to amp opt_mode=O2");
  }
  if (c.amp.enabled && (c.fp16.enabled || c.bf16.enabled)) {
    throw ConfigError("amp.enabled", "Cannot enable both amp with (legacy) fp16 or bfloat16 mode");
  }
  if (!c.managed_gradient_accumulation && stage > 0 && stage != 2 && c.zero_optimization.overlap_comm_enabled()) {
    throw ConfigError("managed_gradient_accumulation",
                      fmt::format("false is not supported with zero_optimization.overlap_comm at ZeRO stage {} "
                                  "(only stage 2 allows it)",
                                  stage));
  }
  if (c.optimizer) {
    const std::string name = canonical_optimizer_name(c.optimizer->type).value_or("");
    if ((name == "lamb" || name == "onebitlamb") && c.fp16.enabled && c.fp16.loss_scale != 0.0) {
      throw ConfigError("optimizer.type", fmt::format("DeepSpeed {} optimizer requires dynamic loss scaling", name));
    }
    const char* one_bit = name == "onebitadam"    ? "1bit-Adam"
                          : name == "zerooneadam" ? "0/1 Adam"
                          : name == "onebitlamb"  ? "1bit-Lamb"
                                                  : nullptr;
    if (one_bit && stage > 0) {
      throw ConfigError("optimizer.type", fmt::format("{} is not compatible with ZeRO", one_bit));
    }
  }
}

DeepSpeedConfig build_config(const nlohmann::json& value, int64_t world_size, WarningLog& warnings) {
  if (!value.is_object()) throw_expected("", "a JSON object at the top level", value);
  check_top_level_keys(value, warnings);
  warn_unimplemented_sections(value, warnings);
  const SectionReader top(value, "", SectionReader::AnyKey{});

  DeepSpeedConfig c;
  c.raw = value;

  c.fp16 = read_fp16(section(value, "fp16"));
  std::string bf16_path = "bf16";
  if (value.contains("bfloat16")) {
    if (value.contains("bf16")) {
      throw ConfigError("bfloat16", "Cannot provide deprecated parameter 'bfloat16' and replacing parameter 'bf16' "
                                    "together");
    }
    bf16_path = "bfloat16";
    warnings.add("bfloat16", "deprecated; use \"bf16\" instead");
  }
  c.bf16 = read_bf16(section(value, bf16_path.c_str()), bf16_path);
  c.amp = read_amp(section(value, "amp"));
  c.torch_autocast = read_torch_autocast(section(value, "torch_autocast"));
  c.data_types = read_data_types(section(value, "data_types"));

  const int64_t allgather_size = top.integer("allgather_size", 500000000, 0);
  c.zero_optimization = read_zero(section(value, "zero_optimization"), allgather_size, warnings);
  c.optimizer = read_optimizer(section(value, "optimizer"), warnings);
  c.scheduler = read_scheduler(section(value, "scheduler"), warnings);

  c.throughput_timer = read_timers(section(value, "timers"));
  c.tensorboard = read_monitor(section(value, "tensorboard"), "tensorboard");
  c.csv_monitor = read_monitor(section(value, "csv_monitor"), "csv_monitor");
  c.wandb = read_wandb(section(value, "wandb"));
  c.comet = read_comet(section(value, "comet"));
  c.trackio = read_trackio(section(value, "trackio"));
  c.flops_profiler = read_flops_profiler(section(value, "flops_profiler"));
  c.comms_logger = read_comms_logger(section(value, "comms_logger"));
  c.checkpoint = read_checkpoint(section(value, "checkpoint"));
  c.aio = read_aio(section(value, "aio"), warnings);
  c.activation_checkpointing = read_activation_checkpointing(section(value, "activation_checkpointing"));
  if (const auto& sa = section(value, "sparse_attention"); !sa.is_null()) {
    c.sparse_attention = read_sparse_attention_config(sa);
  }
  c.pipeline = read_pipeline(section(value, "pipeline"));
  c.tensor_parallel = read_tensor_parallel(section(value, "tensor_parallel"));

  read_scalars(top, c, warnings);
  // DeepSpeed times the phases whenever the flops profiler is on (its summary needs them).
  c.wall_clock_breakdown = c.wall_clock_breakdown || c.flops_profiler.enabled;
  read_batch(top, world_size, c);
  check_combinations(c, bf16_path);

  if (const auto& e = section(value, "elasticity"); e.is_object() && e.value("enabled", nlohmann::json(false)) == true) {
    warnings.add("elasticity.enabled", "elastic training is not implemented by deepspeed-cpp; the batch sizes "
                                       "above are used as written");
  }
  return c;
}

std::vector<std::string> format_warnings(const WarningLog& log, const KeyLocations* locations) {
  std::vector<std::string> out;
  for (const auto& [path, message] : log.entries()) {
    const std::string where = locations ? locations->describe(path) : std::string();
    out.push_back(where.empty() ? fmt::format("{}: {}", path, message)
                                : fmt::format("{}: {} (at {})", path, message, where));
  }
  return out;
}

}  // namespace
}  // namespace config_detail

DeepSpeedConfig config_from_json(const nlohmann::json& value, int64_t world_size) {
  config_detail::WarningLog warnings;
  DeepSpeedConfig c = config_detail::build_config(value, world_size, warnings);
  c.warnings = config_detail::format_warnings(warnings, nullptr);
  return c;
}

namespace {

// Points into the file: the key the error names, or the section it belongs to.
ConfigError located(const ConfigError& e, const config_detail::KeyLocations& locations) {
  const std::string where = locations.describe(e.path());
  if (where.empty()) return e;
  std::string message = e.what();
  message.erase(0, e.path().size() + 2);  // ConfigError's what() is "<path>: <message>"
  return ConfigError(e.path(), fmt::format("{} (at {})", message, where));
}

}  // namespace

ConfigError DeepSpeedConfig::locate(const ConfigError& error) const {
  return key_locations ? located(error, *key_locations) : error;
}

DeepSpeedConfig parse_config(const std::string& text, int64_t world_size, const std::string& source) {
  config_detail::ParsedJson parsed = config_detail::read_json(text, source);
  config_detail::WarningLog warnings;
  DeepSpeedConfig c;
  try {
    c = config_detail::build_config(parsed.value, world_size, warnings);
  } catch (const ConfigError& e) {
    throw located(e, parsed.locations);
  }
  c.warnings = config_detail::format_warnings(warnings, &parsed.locations);
  c.key_locations = std::make_shared<const config_detail::KeyLocations>(std::move(parsed.locations));
  return c;
}

}  // namespace deepspeed
