// Where a config comes from (docs/config.md, "How a config is read"): a file path, the JSON
// text itself, or a URL-safe base64 encoding of it (what DeepSpeed accepts for configs passed
// through command lines).
#include <cctype>
#include <fstream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

#include <deepspeed/config.h>

namespace deepspeed {
namespace {

bool starts_like_json_object(std::string_view s) {
  for (char ch : s) {
    if (!std::isspace(static_cast<unsigned char>(ch))) return ch == '{';
  }
  return false;
}

// URL-safe base64 ('-' and '_'; '+' and '/' also taken; '=' padding optional). nullopt
// for anything that is not base64.
std::optional<std::string> decode_base64(std::string_view text) {
  auto value_of = [](char ch) -> int {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-' || ch == '+') return 62;
    if (ch == '_' || ch == '/') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.empty() || text.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char ch : text) {
    const int v = value_of(ch);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFF));
    }
  }
  return out;
}

// The config's text and the name its messages give it.
std::pair<std::string, std::string> config_text(const std::string& path_or_json) {
  if (starts_like_json_object(path_or_json)) return {path_or_json, "<string>"};
  std::ifstream file(path_or_json, std::ios::binary);
  if (file) {
    std::ostringstream text;
    text << file.rdbuf();
    if (file.bad()) throw ConfigError("", fmt::format("{}: cannot read the file", path_or_json));
    return {text.str(), path_or_json};
  }
  if (auto decoded = decode_base64(path_or_json); decoded && starts_like_json_object(*decoded)) {
    return {*decoded, "<base64 config>"};
  }
  throw ConfigError("", fmt::format("Expected a string path to an existing deepspeed config, or a JSON object or "
                                    "a valid base64. Received: {}",
                                    path_or_json));
}

}  // namespace

DeepSpeedConfig load_config(const std::string& path_or_json, int64_t world_size) {
  const auto [text, source] = config_text(path_or_json);
  return parse_config(text, world_size, source);
}

nlohmann::json load_config_json(const std::string& path_or_json) {
  const auto [text, source] = config_text(path_or_json);
  try {
    return nlohmann::json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError("", fmt::format("{}: {}", source, e.what()));
  }
}

}  // namespace deepspeed
