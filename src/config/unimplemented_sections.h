// Sections of a ds_config that DeepSpeed acts on and deepspeed-cpp reads but does not act on
// yet: each one written (and not "enabled": false) is a warning when the config is read,
// which the engine prints at initialize, so that no one believes it took effect. A feature's
// section leaves the list when the feature is implemented.
#pragma once

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/section_reader.h"

namespace deepspeed::config_detail {

const std::vector<std::string_view>& unimplemented_sections();

// One warning per unimplemented section of `config` that is written, not null and not
// switched off with "enabled": false.
void warn_unimplemented_sections(const nlohmann::json& config, WarningLog& warnings);

}  // namespace deepspeed::config_detail
