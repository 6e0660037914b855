#include "config/json_values.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include <deepspeed/errors.h>

namespace deepspeed::config_detail {

std::string describe_value(const nlohmann::json& value) {
  constexpr std::size_t kMaxShown = 60;
  std::string text = value.dump();
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown - 3) + "...";
  return text;
}

bool is_auto(const nlohmann::json& value) { return value.is_string() && value.get_ref<const std::string&>() == "auto"; }

void throw_expected(const std::string& path, std::string_view expected, const nlohmann::json& got) {
  throw ConfigError(path, fmt::format("expected {}, got {}", expected, describe_value(got)));
}

bool to_bool(const nlohmann::json& value, const std::string& path) {
  if (!value.is_boolean()) throw_expected(path, "true or false", value);
  return value.get<bool>();
}

int64_t to_int(const nlohmann::json& value, const std::string& path, std::string_view expected) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw_expected(path, fmt::format("{} that fits in 64 bits", expected), value);
    }
    return static_cast<int64_t>(v);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_float()) {
    // 5e8 and 1e9 are common in real configs for integer keys; pydantic accepts them.
    const double v = value.get<double>();
    if (!std::isfinite(v) || v != std::floor(v)) throw_expected(path, expected, value);
    // 2^63 is the first double past int64's range.
    if (v >= 9223372036854775808.0 || v < -9223372036854775808.0) {
      throw_expected(path, fmt::format("{} that fits in 64 bits", expected), value);
    }
    return static_cast<int64_t>(v);
  }
  throw_expected(path, expected, value);
}

double to_number(const nlohmann::json& value, const std::string& path) {
  if (!value.is_number()) throw_expected(path, "a number", value);
  return value.get<double>();
}

std::string to_string(const nlohmann::json& value, const std::string& path) {
  if (!value.is_string()) throw_expected(path, "a string", value);
  return value.get<std::string>();
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return out;
}

}  // namespace deepspeed::config_detail
