// Typed reads of single JSON values for the config reader. Each throws ConfigError naming
// the key path and what was expected, e.g. `train_batch_size: expected a positive integer,
// got "abc"`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace deepspeed::config_detail {

// The value as it would be written in JSON, shortened to a readable length.
std::string describe_value(const nlohmann::json& value);

// True for the string "auto": a placeholder Hugging Face Transformers/Accelerate replace.
bool is_auto(const nlohmann::json& value);

[[noreturn]] void throw_expected(const std::string& path, std::string_view expected,
                                 const nlohmann::json& got);

// JSON true/false only (no 0/1, no "true").
bool to_bool(const nlohmann::json& value, const std::string& path);
// An integer, or a float with an integral value (5e8), that fits in 64 bits.
// `expected` words the error ("an integer", "a positive integer", ...).
int64_t to_int(const nlohmann::json& value, const std::string& path,
               std::string_view expected = "an integer");
// Any JSON number (not a bool).
double to_number(const nlohmann::json& value, const std::string& path);
std::string to_string(const nlohmann::json& value, const std::string& path);
// ASCII lower case, for the names DeepSpeed matches case-insensitively.
std::string ascii_lower(std::string_view s);

}  // namespace deepspeed::config_detail
