// zero_optimization and its offload sub-sections (docs/zero.md, "Keys"), including the boolean
// form and the deprecated spellings DeepSpeed still maps.
#include <stdexcept>

#include <fmt/format.h>

#include "config/json_values.h"
#include "config/sections.h"

namespace deepspeed::config_detail {
namespace {

constexpr const char* kPath = "zero_optimization";

// DeepSpeed's field names for these are the short ones, with the documented stage3_ names as
// pydantic aliases; both spellings are current, so neither gets a deprecation warning.
struct Alias {
  std::string_view documented;  // stage3_...
  std::string_view short_name;
};
constexpr Alias kAliases[] = {
    {"stage3_prefetch_bucket_size", "prefetch_bucket_size"},
    {"stage3_param_persistence_threshold", "param_persistence_threshold"},
    {"stage3_model_persistence_threshold", "model_persistence_threshold"},
    {"stage3_max_live_parameters", "max_live_parameters"},
    {"stage3_max_reuse_distance", "max_reuse_distance"},
    {"stage3_gather_16bit_weights_on_model_save", "gather_16bit_weights_on_model_save"},
    {"stage3_module_granularity_threshold", "module_granularity_threshold"},
    {"stage3_use_all_reduce_for_fetch_params", "use_all_reduce_for_fetch_params"},
    {"stage3_allgather_sequential", "allgather_sequential"},
};

const std::vector<std::string_view>& known_zero_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> k = {
        "stage", "contiguous_gradients", "overlap_comm", "reduce_scatter", "reduce_bucket_size",
        "use_multi_rank_bucket_allreduce", "allgather_partitions", "allgather_bucket_size",
        "load_from_fp32_weights", "elastic_checkpoint", "round_robin_gradients",
        "ignore_unused_parameters", "offload_optimizer", "offload_param", "sub_group_size",
        "zero_hpz_partition_size", "zero_quantized_weights", "zero_quantized_nontrainable_weights",
        "zero_quantized_gradients", "zeropp_loco_param", "mics_shard_size",
        "mics_hierarchical_params_gather", "memory_efficient_linear", "override_module_apply",
        "pipeline_loading_checkpoint", "log_trace_cache_warnings", "enable_sanity_checks",
        "save_muon_momentum_buffer_in_memory", "legacy_stage1", "leaf_module", "zenflow",
        // deprecated spellings, mapped below
        "cpu_offload", "cpu_offload_param", "cpu_offload_use_pin_memory",
        "stage3_gather_fp16_weights_on_model_save"};
    for (const Alias& a : kAliases) {
      k.push_back(a.documented);
      k.push_back(a.short_name);
    }
    return k;
  }();
  return keys;
}

// The value written under either spelling of an aliased key (nullptr when neither).
const nlohmann::json* find_aliased(const SectionReader& s, const Alias& alias) {
  const auto* documented = s.find(alias.documented);
  const auto* short_form = s.find(alias.short_name);
  if (documented && short_form) {
    throw ConfigError(s.path(alias.short_name),
                      fmt::format("same setting as {}; give only one of the two", s.path(alias.documented)));
  }
  return documented ? documented : short_form;
}

const Alias& alias_of(std::string_view documented) {
  for (const Alias& a : kAliases) {
    if (a.documented == documented) return a;
  }
  throw std::logic_error("no such alias");
}

int64_t aliased_integer(const SectionReader& s, std::string_view documented, int64_t fallback) {
  const Alias& a = alias_of(documented);
  const auto* v = find_aliased(s, a);
  if (!v) return fallback;
  const std::string path = s.path(s.find(a.documented) ? a.documented : a.short_name);
  const int64_t n = to_int(*v, path, "an integer >= 0");
  if (n < 0) throw_expected(path, "an integer >= 0", *v);
  return n;
}

bool aliased_boolean(const SectionReader& s, std::string_view documented, bool fallback) {
  const Alias& a = alias_of(documented);
  const auto* v = find_aliased(s, a);
  if (!v) return fallback;
  return to_bool(*v, s.path(s.find(a.documented) ? a.documented : a.short_name));
}

std::string read_offload_device(const SectionReader& s) {
  const std::string device = s.string("device", "none");
  if (device != "none" && device != "cpu" && device != "nvme") {
    throw ConfigError(s.path("device"), fmt::format("expected one of \"none\", \"cpu\", \"nvme\", got \"{}\"", device));
  }
  return device;
}

void require_nvme_path(const SectionReader& s, const std::string& device,
                       const std::optional<std::string>& nvme_path) {
  if (device == "nvme" && !nvme_path) {
    throw ConfigError(s.path("nvme_path"), "required when device is \"nvme\" (the folder to swap tensors to)");
  }
}

OffloadOptimizerConfig read_offload_optimizer(const nlohmann::json& value) {
  const SectionReader s(value, fmt::format("{}.offload_optimizer", kPath),
                        {"device", "nvme_path", "buffer_count", "pin_memory", "pipeline_read",
                         "pipeline_write", "pipeline", "fast_init", "ratio", "super_offload",
                         "cpuadam_cores_perc"});
  OffloadOptimizerConfig c;
  c.device = read_offload_device(s);
  c.nvme_path = s.optional_string("nvme_path");
  require_nvme_path(s, c.device, c.nvme_path);
  c.buffer_count = s.integer("buffer_count", c.buffer_count, 0);
  c.pin_memory = s.boolean("pin_memory", c.pin_memory);
  c.pipeline_read = s.boolean("pipeline_read", c.pipeline_read);
  c.pipeline_write = s.boolean("pipeline_write", c.pipeline_write);
  // DeepSpeed derives "pipeline" from the two above; a written value is only type-checked.
  s.boolean("pipeline", false);
  c.fast_init = s.boolean("fast_init", c.fast_init);
  c.ratio = s.number_in("ratio", c.ratio, 0.0, 1.0);
  c.super_offload = s.boolean("super_offload", c.super_offload);
  c.cpuadam_cores_perc = s.number_in("cpuadam_cores_perc", c.cpuadam_cores_perc, 0.0, 1.0);
  return c;
}

OffloadParamConfig read_offload_param(const nlohmann::json& value) {
  const SectionReader s(value, fmt::format("{}.offload_param", kPath),
                        {"device", "nvme_path", "buffer_count", "buffer_size", "max_in_cpu", "pin_memory"});
  OffloadParamConfig c;
  c.device = read_offload_device(s);
  c.nvme_path = s.optional_string("nvme_path");
  require_nvme_path(s, c.device, c.nvme_path);
  c.buffer_count = s.integer("buffer_count", c.buffer_count, 0);
  c.buffer_size = s.integer("buffer_size", c.buffer_size, 0);
  c.max_in_cpu = s.integer("max_in_cpu", c.max_in_cpu, 0);
  c.pin_memory = s.boolean("pin_memory", c.pin_memory);
  return c;
}

// A deprecated boolean that stands for an offload section with device "cpu". Writing both
// the old and the new key is an error, as in DeepSpeed, even when the old one is false.
template <typename Offload>
void map_cpu_offload(const SectionReader& s, std::string_view old_key, std::string_view new_key,
                     std::optional<Offload>& target, WarningLog& warnings) {
  const auto* v = s.find(old_key);
  if (!v) return;
  if (s.has(new_key)) {
    throw ConfigError(s.path(old_key), fmt::format("Cannot provide deprecated parameter '{}' and replacing "
                                                   "parameter '{}' together",
                                                   old_key, new_key));
  }
  const bool on = !v->is_null() && to_bool(*v, s.path(old_key));
  warnings.add(s.path(old_key), fmt::format("deprecated; use \"{}\": {{\"device\": \"cpu\"}} instead", new_key));
  if (on) {
    Offload offload;
    offload.device = "cpu";
    target = offload;
  }
}

}  // namespace

ZeroConfig read_zero(const nlohmann::json& value, int64_t allgather_size, WarningLog& warnings) {
  ZeroConfig c;
  if (value.is_boolean()) {
    // The pre-0.3 form. DeepSpeed maps true to stage 1 with the legacy top-level
    // "allgather_size" as its bucket, false to stage 0, and warns either way.
    c.stage = value.get<bool>() ? 1 : 0;
    if (c.stage == 1) c.allgather_bucket_size = allgather_size;
    warnings.add(kPath, fmt::format("the boolean form is deprecated; write \"zero_optimization\": "
                                    "{{\"stage\": {}}} instead",
                                    c.stage));
    return c;
  }
  const SectionReader s(value, kPath, known_zero_keys());

  if (const auto* v = s.find("stage")) {
    const int64_t stage = to_int(*v, s.path("stage"), "0, 1, 2 or 3");
    if (stage < 0 || stage > 3) throw_expected(s.path("stage"), "0, 1, 2 or 3", *v);
    c.stage = static_cast<int>(stage);
  }
  c.contiguous_gradients = s.boolean("contiguous_gradients", c.contiguous_gradients);
  if (const auto* v = s.find("overlap_comm"); v && !v->is_null()) c.overlap_comm = to_bool(*v, s.path("overlap_comm"));
  c.reduce_scatter = s.boolean("reduce_scatter", c.reduce_scatter);
  c.reduce_bucket_size = s.integer("reduce_bucket_size", c.reduce_bucket_size, 0);
  c.use_multi_rank_bucket_allreduce = s.boolean("use_multi_rank_bucket_allreduce", c.use_multi_rank_bucket_allreduce);
  c.allgather_partitions = s.boolean("allgather_partitions", c.allgather_partitions);
  c.allgather_bucket_size = s.integer("allgather_bucket_size", c.allgather_bucket_size, 0);
  c.load_from_fp32_weights = s.boolean("load_from_fp32_weights", c.load_from_fp32_weights);
  c.elastic_checkpoint = s.boolean("elastic_checkpoint", c.elastic_checkpoint);
  c.round_robin_gradients = s.boolean("round_robin_gradients", c.round_robin_gradients);
  c.ignore_unused_parameters = s.boolean("ignore_unused_parameters", c.ignore_unused_parameters);

  if (const auto* v = s.find("offload_optimizer"); v && !v->is_null()) c.offload_optimizer = read_offload_optimizer(*v);
  if (const auto* v = s.find("offload_param"); v && !v->is_null()) c.offload_param = read_offload_param(*v);
  map_cpu_offload(s, "cpu_offload", "offload_optimizer", c.offload_optimizer, warnings);
  map_cpu_offload(s, "cpu_offload_param", "offload_param", c.offload_param, warnings);
  if (const auto* v = s.find("cpu_offload_use_pin_memory")) {
    if (!v->is_null()) to_bool(*v, s.path("cpu_offload_use_pin_memory"));
    // DeepSpeed warns and ignores it (pin_memory of the offload sections decides).
    warnings.add(s.path("cpu_offload_use_pin_memory"),
                 "deprecated and ignored; set \"pin_memory\" in offload_optimizer or offload_param instead");
  }

  c.sub_group_size = s.integer("sub_group_size", c.sub_group_size, 0);
  c.stage3_prefetch_bucket_size = aliased_integer(s, "stage3_prefetch_bucket_size", c.stage3_prefetch_bucket_size);
  c.stage3_param_persistence_threshold =
      aliased_integer(s, "stage3_param_persistence_threshold", c.stage3_param_persistence_threshold);
  c.stage3_model_persistence_threshold =
      aliased_integer(s, "stage3_model_persistence_threshold", c.stage3_model_persistence_threshold);
  c.stage3_max_live_parameters = aliased_integer(s, "stage3_max_live_parameters", c.stage3_max_live_parameters);
  c.stage3_max_reuse_distance = aliased_integer(s, "stage3_max_reuse_distance", c.stage3_max_reuse_distance);
  c.stage3_gather_16bit_weights_on_model_save =
      aliased_boolean(s, "stage3_gather_16bit_weights_on_model_save", c.stage3_gather_16bit_weights_on_model_save);
  if (const auto* v = s.find("stage3_gather_fp16_weights_on_model_save")) {
    const std::string old_path = s.path("stage3_gather_fp16_weights_on_model_save");
    if (find_aliased(s, alias_of("stage3_gather_16bit_weights_on_model_save"))) {
      throw ConfigError(old_path, "Cannot provide deprecated parameter 'stage3_gather_fp16_weights_on_model_save' "
                                  "and replacing parameter 'stage3_gather_16bit_weights_on_model_save' together");
    }
    c.stage3_gather_16bit_weights_on_model_save = to_bool(*v, old_path);
    warnings.add(old_path, "deprecated; use stage3_gather_16bit_weights_on_model_save instead");
  }

  // The rest: checked, defaults filled in, kept as JSON.
  nlohmann::json& o = c.other;
  o["stage3_module_granularity_threshold"] = aliased_integer(s, "stage3_module_granularity_threshold", 0);
  o["stage3_use_all_reduce_for_fetch_params"] = aliased_boolean(s, "stage3_use_all_reduce_for_fetch_params", false);
  o["stage3_allgather_sequential"] = aliased_boolean(s, "stage3_allgather_sequential", false);
  o["zero_hpz_partition_size"] = s.integer("zero_hpz_partition_size", 1, 0);
  o["mics_shard_size"] = s.integer("mics_shard_size", -1);
  for (auto [key, fallback] : {std::pair<std::string_view, bool>{"zero_quantized_weights", false},
                               {"zero_quantized_nontrainable_weights", false},
                               {"zero_quantized_gradients", false},
                               {"mics_hierarchical_params_gather", false},
                               {"memory_efficient_linear", true},
                               {"override_module_apply", true},
                               {"pipeline_loading_checkpoint", false},
                               {"log_trace_cache_warnings", false},
                               {"enable_sanity_checks", false},
                               {"save_muon_momentum_buffer_in_memory", false},
                               {"legacy_stage1", false}}) {
    o[std::string(key)] = s.boolean(key, fallback);
  }
  for (std::string_view key : {"zeropp_loco_param", "leaf_module", "zenflow"}) {
    const auto* v = s.find(key);
    if (v && !v->is_null() && !v->is_object()) throw_expected(s.path(key), "a JSON object or null", *v);
    o[std::string(key)] = v ? *v : nlohmann::json(nullptr);
  }
  if (o["legacy_stage1"].get<bool>()) {
    throw ConfigError(s.path("legacy_stage1"),
                      "the legacy stage 1 implementation was removed from DeepSpeed; remove this key");
  }

  if (c.offload_optimizer && c.offload_optimizer->ratio < 1.0 && c.stage != 3) {
    throw ConfigError(s.path("offload_optimizer.ratio"), "Partial offloading only supported for ZeRO Stage 3.");
  }
  if (c.offload_param_enabled() && c.stage != 3) {
    warnings.add(s.path("offload_param"),
                 fmt::format("parameter offload is only done by ZeRO stage 3; ignored at stage {}", c.stage));
  }
  // ZeRO++ extends stage 3; DeepSpeed's stage 1 and 2 optimizers take none of its switches.
  if (c.stage != 3) {
    for (std::string_view key : {"zero_quantized_weights", "zero_quantized_gradients"}) {
      if (o[std::string(key)].get<bool>()) {
        warnings.add(s.path(key), fmt::format("ZeRO++ is done by ZeRO stage 3 only; ignored at stage {}", c.stage));
      }
    }
    if (o["zero_hpz_partition_size"].get<int64_t>() > 1) {
      warnings.add(s.path("zero_hpz_partition_size"),
                   fmt::format("ZeRO++ is done by ZeRO stage 3 only; ignored at stage {}", c.stage));
    }
  }
  return c;
}

}  // namespace deepspeed::config_detail
