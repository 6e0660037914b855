// Typed reading of an "optimizer.params" or "scheduler.params" JSON object with DeepSpeed's
// keyword-argument semantics: every key must be one the algorithm accepts (Python would
// raise TypeError for an unexpected keyword), values must have the expected type, and an
// unknown key is reported with the nearest accepted key. `null` and "auto" mean "not given"
// (Python's None default; "auto" inside a section means the default, docs/config.md).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace deepspeed {

class ParamReader {
 public:
  // `section` is the key path of the object, e.g. "optimizer.params"; `owner` names the
  // algorithm in messages ("Adam", "WarmupLR").
  ParamReader(const nlohmann::json& params, std::string section, std::string owner);

  // Each reader declares `key` as accepted and returns its value when given.
  std::optional<double> number(const std::string& key);
  std::optional<bool> boolean(const std::string& key);
  // Integral floats (5e8) are accepted, as the config reader does for integer keys.
  std::optional<int64_t> integer(const std::string& key);
  std::optional<std::string> string(const std::string& key);
  // A 2-element list of numbers (betas).
  std::optional<std::array<double, 2>> pair(const std::string& key);
  // A number broadcast to `groups` groups, or a list of exactly `groups` numbers; a list of
  // another length gives DeepSpeed's "expected {G} value for {name}, got {L}".
  std::optional<std::vector<double>> per_group(const std::string& key, size_t groups,
                                               const std::string& name_in_message);
  // Declares `key` accepted without reading it (keys that change nothing here).
  void accept(const std::string& key) { accepted_.insert(key); }
  bool has(const std::string& key) const;

  // Path of `key` for error messages: "<section>.<key>".
  std::string path(const std::string& key) const { return section_ + "." + key; }
  // Throws ConfigError for the first key that no reader declared, naming the nearest one.
  void reject_unknown() const;

 private:
  const nlohmann::json* find(const std::string& key);
  [[noreturn]] void type_error(const std::string& key, const char* expected,
                               const nlohmann::json& got) const;

  const nlohmann::json& params_;
  std::string section_;
  std::string owner_;
  std::set<std::string> accepted_;
};

// Levenshtein distance, for "did you mean" hints.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `key` (empty when there are none).
std::string nearest_key(const std::string& key, const std::set<std::string>& candidates);

}  // namespace deepspeed
