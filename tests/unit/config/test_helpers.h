// Shared helpers for the config tests.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include <deepspeed/config.h>

namespace deepspeed::testing {

// Parses `json` for `world_size` and returns the ConfigError it must throw.
inline ConfigError config_error(const std::string& json, int64_t world_size = 1) {
  try {
    parse_config(json, world_size, "ds_config.json");
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a ConfigError for: " << json;
  return ConfigError("", "<none>");
}

// True when some warning contains `text`.
inline bool has_warning(const DeepSpeedConfig& c, const std::string& text) {
  for (const auto& w : c.warnings) {
    if (w.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace deepspeed::testing
