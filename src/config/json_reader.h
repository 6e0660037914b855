// JSON text → nlohmann::json, the way a ds_config.json is read: `//` and `/* */` comments
// allowed, duplicate keys rejected (at any depth), and the line:column of every key kept so
// that later errors can point into the file.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace deepspeed::config_detail {

struct TextLocation {
  std::size_t line = 1;    // 1-based
  std::size_t column = 1;  // 1-based, in bytes
};

// Where each key of one parsed text was written, by dotted key path ("fp16.enabled";
// array elements as "a[2]").
class KeyLocations {
 public:
  KeyLocations() = default;
  explicit KeyLocations(std::string source) : source_(std::move(source)) {}

  void record(const std::string& path, TextLocation where) { where_.emplace(path, where); }
  std::optional<TextLocation> find(const std::string& path) const;
  // "ds_config.json:3:5" for `path` or, when it was not written, for its nearest written
  // ancestor; empty when neither is known.
  std::string describe(const std::string& path) const;
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::map<std::string, TextLocation> where_;
};

struct ParsedJson {
  nlohmann::json value;
  KeyLocations locations;
};

// Throws ConfigError: "<source>:<line>:<col>: syntax error: ..." for malformed text, or,
// for duplicate keys, one error whose path is the first duplicate and whose message lists
// every duplicate with where it and its first occurrence were written.
ParsedJson read_json(const std::string& text, const std::string& source);

// The location of byte `offset` of `text`.
TextLocation location_of(const std::string& text, std::size_t offset);

}  // namespace deepspeed::config_detail
