// Reading one config section (a JSON object such as "fp16" or "zero_optimization") the way
// DeepSpeed's pydantic models do: keys set to "auto" are dropped (they mean the default),
// an unknown key is an error naming the nearest known key, and each read checks the type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace deepspeed::config_detail {

// Things the reader tells the user without failing: deprecations, ignored keys. Kept with
// their key path so that the caller can add the line:column where the key was written.
class WarningLog {
 public:
  void add(std::string path, std::string message) {
    entries_.emplace_back(std::move(path), std::move(message));
  }
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// "parent.key", or "key" at the top level.
std::string join_path(std::string_view parent, std::string_view key);

// Throws ConfigError for the keys of `object` that are not in `known` (all of them in one
// message, in key order), naming for each the nearest known key.
void reject_unknown_keys(const nlohmann::json& object, const std::string& path,
                         const std::vector<std::string_view>& known);

class SectionReader {
 public:
  // `value` must be a JSON object; null reads as an empty one (pydantic's None default).
  SectionReader(const nlohmann::json& value, std::string path, std::vector<std::string_view> known);
  // Accepts any key: for the top level, where unknown keys are warnings, not errors.
  struct AnyKey {};
  SectionReader(const nlohmann::json& value, std::string path, AnyKey);

  const std::string& path() const { return path_; }
  std::string path(std::string_view key) const { return join_path(path_, key); }

  // The value of `key`, or nullptr when absent or "auto".
  const nlohmann::json* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  bool boolean(std::string_view key, bool fallback) const;
  // Integers (integral floats accepted) not below `minimum`.
  int64_t integer(std::string_view key, int64_t fallback,
                  std::optional<int64_t> minimum = std::nullopt) const;
  double number(std::string_view key, double fallback) const;
  // A number in [low, high].
  double number_in(std::string_view key, double fallback, double low, double high) const;
  std::string string(std::string_view key, std::string fallback) const;
  // A string or null (pydantic Optional[str]).
  std::optional<std::string> optional_string(std::string_view key) const;

  // The section as written, minus "auto" values.
  const nlohmann::json& values() const { return values_; }

 private:
  nlohmann::json values_;
  std::string path_;
};

}  // namespace deepspeed::config_detail
