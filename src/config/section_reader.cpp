#include "config/section_reader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <deepspeed/errors.h>

#include "config/json_values.h"
#include "config/nearest_key.h"

namespace deepspeed::config_detail {

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

void reject_unknown_keys(const nlohmann::json& object, const std::string& path,
                         const std::vector<std::string_view>& known) {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (std::string_view k : known) found = found || k == key;
    if (!found) unknown.push_back(key);
  }
  if (unknown.empty()) return;

  // All unknown keys of the section in one message: fixing them one run at a time is slow.
  std::string message = fmt::format("unknown key; the nearest known key is \"{}\"",
                                    nearest_key(unknown.front(), known));
  for (std::size_t i = 1; i < unknown.size(); ++i) {
    message += fmt::format("{} {} (nearest \"{}\")", i == 1 ? "; also unknown:" : ",",
                           join_path(path, unknown[i]), nearest_key(unknown[i], known));
  }
  // A short list of what the section accepts answers the next question too.
  constexpr std::size_t kListAtMost = 12;
  if (known.size() <= kListAtMost) {
    message += fmt::format(". {} accepts: {}", path, fmt::join(known, ", "));
  }
  throw ConfigError(join_path(path, unknown.front()), message);
}

SectionReader::SectionReader(const nlohmann::json& value, std::string path,
                             std::vector<std::string_view> known)
    : values_(nlohmann::json::object()), path_(std::move(path)) {
  if (value.is_null()) return;
  if (!value.is_object()) throw_expected(path_, "a JSON object", value);
  reject_unknown_keys(value, path_, known);
  for (const auto& [key, v] : value.items()) {
    if (!is_auto(v)) values_[key] = v;
  }
}

SectionReader::SectionReader(const nlohmann::json& value, std::string path, AnyKey)
    : values_(nlohmann::json::object()), path_(std::move(path)) {
  if (value.is_null()) return;
  if (!value.is_object()) throw_expected(path_, "a JSON object", value);
  for (const auto& [key, v] : value.items()) {
    if (!is_auto(v)) values_[key] = v;
  }
}

const nlohmann::json* SectionReader::find(std::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &*it;
}

bool SectionReader::boolean(std::string_view key, bool fallback) const {
  const auto* v = find(key);
  return v ? to_bool(*v, path(key)) : fallback;
}

int64_t SectionReader::integer(std::string_view key, int64_t fallback,
                               std::optional<int64_t> minimum) const {
  const auto* v = find(key);
  if (!v) return fallback;
  std::string expected = "an integer";
  if (minimum == 1) {
    expected = "a positive integer";
  } else if (minimum) {
    expected = fmt::format("an integer >= {}", *minimum);
  }
  const int64_t n = to_int(*v, path(key), expected);
  if (minimum && n < *minimum) throw_expected(path(key), expected, *v);
  return n;
}

double SectionReader::number(std::string_view key, double fallback) const {
  const auto* v = find(key);
  return v ? to_number(*v, path(key)) : fallback;
}

double SectionReader::number_in(std::string_view key, double fallback, double low, double high) const {
  const auto* v = find(key);
  if (!v) return fallback;
  const std::string expected = fmt::format("a number between {} and {}", low, high);
  if (!v->is_number()) throw_expected(path(key), expected, *v);
  const double n = v->get<double>();
  if (n < low || n > high) throw_expected(path(key), expected, *v);
  return n;
}

std::string SectionReader::string(std::string_view key, std::string fallback) const {
  const auto* v = find(key);
  return v ? to_string(*v, path(key)) : fallback;
}

std::optional<std::string> SectionReader::optional_string(std::string_view key) const {
  const auto* v = find(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) throw_expected(path(key), "a string or null", *v);
  return v->get<std::string>();
}

}  // namespace deepspeed::config_detail
