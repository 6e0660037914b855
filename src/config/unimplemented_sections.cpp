#include "config/unimplemented_sections.h"

namespace deepspeed::config_detail {

const std::vector<std::string_view>& unimplemented_sections() {
  // elasticity has its own warning (deepspeed_config.cpp): it also says which batch sizes apply.
  static const std::vector<std::string_view> sections = {
      "expert_parallel",
      "compression_training", "quantize_training", "weight_quantization", "data_efficiency",
      "curriculum_learning", "progressive_layer_drop", "autotuning", "hybrid_engine", "compile",
      "eigenvalue", "nebula", "datastates", "graph_harvesting"};
  return sections;
}

void warn_unimplemented_sections(const nlohmann::json& config, WarningLog& warnings) {
  for (std::string_view name : unimplemented_sections()) {
    const auto it = config.find(std::string(name));
    if (it == config.end() || it->is_null()) continue;
    if (it->is_object()) {
      const auto enabled = it->find("enabled");
      if (enabled != it->end() && *enabled == false) continue;
    }
    warnings.add(std::string(name), "deepspeed-cpp does not implement this section yet: it has no effect");
  }
}

}  // namespace deepspeed::config_detail
