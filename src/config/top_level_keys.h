// The top level of a ds_config: which keys DeepSpeed knows, what an unknown key or a
// top-level "auto" means (docs/compatibility.md, "Reading a config").
#pragma once

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/section_reader.h"

namespace deepspeed::config_detail {

// Every top-level key DeepSpeed 0.19.6 reads, including sections outside deepspeed-cpp's
// core (pipeline, elasticity, ...) and legacy ones (bfloat16, allgather_size).
const std::vector<std::string_view>& known_top_level_keys();

// Throws ConfigError when a known top-level key is "auto" (a Hugging Face template value
// that only Transformers/Accelerate can fill in); warns about each unknown key, naming the
// nearest known one.
void check_top_level_keys(const nlohmann::json& config, WarningLog& warnings);

}  // namespace deepspeed::config_detail
