// "tensor_parallel": DeepSpeed's AutoTP training keys (TPTrainingConfig, and partition_config as
// AutoTPConfig.from_dict reads it). The keys DeepSpeed keeps for its inference parser
// (keep_module_on_host, injection_policy_tuple, kernel_inject, "tp") are accepted and ignored,
// except that "tp.tp_size" must agree with autotp_size as DeepSpeed's engine requires.
#include <algorithm>

#include <fmt/format.h>

#include "config/json_values.h"
#include "config/sections.h"

namespace deepspeed::config_detail {
namespace {

std::vector<std::string> strings(const nlohmann::json& value, const std::string& path) {
  if (!value.is_array()) throw ConfigError(path, "expected a list of strings");
  std::vector<std::string> out;
  for (const auto& v : value) {
    if (!v.is_string()) throw ConfigError(path, "expected a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

int64_t shape_size(const nlohmann::json& v, const std::string& path) {
  if (!v.is_number_integer()) throw ConfigError(path, "AutoTP shape dimensions must be positive integers or -1.");
  const auto n = v.get<int64_t>();
  if (n == 0 || n < -1) throw ConfigError(path, "AutoTP shape dimensions must be positive integers or -1.");
  return n;
}

TpLayerSpec read_layer_spec(const nlohmann::json& value, const std::string& path) {
  const SectionReader s(value, path,
                        {"patterns", "partition_type", "shape", "partition_dim", "gather_output", "grad_allreduce",
                         "model_types"});
  TpLayerSpec spec;
  if (const auto* p = s.find("patterns")) spec.patterns = strings(*p, s.path("patterns"));
  spec.partition_type = ascii_lower(s.string("partition_type", "column"));
  if (spec.partition_type != "column" && spec.partition_type != "row" && spec.partition_type != "skip") {
    throw ConfigError(s.path("partition_type"),
                      fmt::format("expected \"column\", \"row\" or \"skip\", got \"{}\"", spec.partition_type));
  }
  if (const auto* d = s.find("partition_dim"); d && !d->is_null()) spec.partition_dim = s.integer("partition_dim", 0, 0);
  spec.gather_output = s.boolean("gather_output", false);
  spec.grad_allreduce = s.boolean("grad_allreduce", false);
  if (const auto* m = s.find("model_types"); m && !m->is_null()) spec.model_types = strings(*m, s.path("model_types"));
  if (const auto* shape = s.find("shape"); shape && !shape->is_null()) {
    const std::string sp = s.path("shape");
    if (!shape->is_array() || shape->empty()) {
      throw ConfigError(sp, "AutoTP shape must be a tuple of ints or a tuple at partition_dim.");
    }
    const int64_t dim = spec.effective_partition_dim();
    if (dim >= static_cast<int64_t>(shape->size())) {
      throw ConfigError(sp, fmt::format("AutoTP partition_dim {} is out of range for shape length {}.", dim,
                                        shape->size()));
    }
    for (size_t i = 0; i < shape->size(); ++i) {
      const auto& entry = (*shape)[i];
      if (entry.is_array()) {
        if (static_cast<int64_t>(i) != dim) {
          throw ConfigError(sp, fmt::format("AutoTP shape nested tuple only allowed at partition_dim={}, got at {}.",
                                            dim, i));
        }
        if (entry.empty()) throw ConfigError(sp, "AutoTP shape nested tuple cannot be empty.");
        std::vector<int64_t> sizes;
        for (const auto& v : entry) {
          if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
            throw ConfigError(sp, "AutoTP nested sub-parameter sizes must be positive integers.");
          }
          sizes.push_back(v.get<int64_t>());
        }
        spec.shape.push_back(std::move(sizes));
      } else {
        spec.shape.push_back({shape_size(entry, sp)});
      }
    }
  }
  return spec;
}

}  // namespace

TensorParallelConfig read_tensor_parallel(const nlohmann::json& value) {
  const SectionReader s(value, "tensor_parallel",
                        {"autotp_size", "tp_overlap_comm", "partition_config", "preset_model", "dtype", "tp",
                         "tensor_parallel", "keep_module_on_host", "kernel_inject", "replace_with_kernel_inject",
                         "injection_policy_tuple"});
  TensorParallelConfig c;
  c.autotp_size = s.integer("autotp_size", 0, 0);
  c.tp_overlap_comm = s.boolean("tp_overlap_comm", false);
  if (auto preset = s.optional_string("preset_model")) {
    static const char* const kPresets[] = {"llama", "bloom", "chatglm", "mixtral", "deepseek_v2", "qwen2", "phi3"};
    const std::string p = ascii_lower(*preset);
    if (std::find(std::begin(kPresets), std::end(kPresets), p) == std::end(kPresets)) {
      throw ConfigError(s.path("preset_model"),
                        fmt::format("unknown preset \"{}\"; available: llama, bloom, chatglm, mixtral, deepseek_v2, "
                                    "qwen2, phi3",
                                    *preset));
    }
    c.preset_model = p;
  }
  for (const char* tp_key : {"tp", "tensor_parallel"}) {
    const auto* tp = s.find(tp_key);
    if (!tp || tp->is_null()) continue;
    if (!tp->is_object()) throw ConfigError(s.path(tp_key), "expected an object");
    const auto size = tp->find("tp_size");
    if (size != tp->end() && size->is_number_integer() && size->get<int64_t>() != 1 &&
        size->get<int64_t>() != c.autotp_size) {
      throw ConfigError(s.path(tp_key) + ".tp_size",
                        fmt::format("tensor_parallel.tp.tp_size ({}) does not match tensor_parallel.autotp_size ({}).",
                                    size->get<int64_t>(), c.autotp_size));
    }
  }
  if (const auto* pc = s.find("partition_config"); pc && !pc->is_null()) {
    const SectionReader p(*pc, s.path("partition_config"),
                          {"layer_specs", "use_default_specs", "strict_mode", "tp_size", "embedding_partition_dim",
                           "lm_head_patterns"});
    c.has_partition_config = true;
    c.use_default_specs = p.boolean("use_default_specs", true);
    c.strict_mode = p.boolean("strict_mode", false);
    if (const auto* specs = p.find("layer_specs"); specs && !specs->is_null()) {
      if (!specs->is_array()) throw ConfigError(p.path("layer_specs"), "expected a list of layer specs");
      for (size_t i = 0; i < specs->size(); ++i) {
        c.layer_specs.push_back(read_layer_spec((*specs)[i], fmt::format("{}[{}]", p.path("layer_specs"), i)));
      }
    }
  }
  return c;
}

}  // namespace deepspeed::config_detail
