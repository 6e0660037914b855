#include "comm/deepspeed_timeout.h"

#include <cstdlib>
#include <string>

#include <deepspeed/errors.h>

namespace deepspeed::comm {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

[[noreturn]] void refuse(std::string_view value, const std::string& expected) {
  throw CommError("DEEPSPEED_TIMEOUT='" + std::string(value) + "': " + expected);
}

}  // namespace

std::chrono::milliseconds parse_deepspeed_timeout(std::optional<std::string_view> value) {
  if (!value || value->empty()) return std::chrono::minutes(kDefaultTimeoutMinutes);
  const std::string_view text = *value;
  std::size_t b = 0, e = text.size();
  while (b < e && is_blank(text[b])) ++b;
  while (e > b && is_blank(text[e - 1])) --e;
  std::string_view number = text.substr(b, e - b);
  bool negative = false;
  if (!number.empty() && (number[0] == '+' || number[0] == '-')) {
    negative = number[0] == '-';
    number.remove_prefix(1);
  }
  // Python's int(): digits, with single underscores between them.
  bool well_formed = !number.empty() && is_digit(number.front()) && is_digit(number.back());
  long long minutes = 0;
  bool too_large = false;
  for (std::size_t i = 0; well_formed && i < number.size(); ++i) {
    const char c = number[i];
    if (c == '_') {
      well_formed = is_digit(number[i - 1]) && is_digit(number[i + 1]);
      continue;
    }
    if (!is_digit(c)) {
      well_formed = false;
      break;
    }
    if (!too_large) minutes = minutes * 10 + (c - '0');
    too_large = too_large || minutes > kMaxTimeoutMinutes;
  }
  const std::string whole = "expected a whole number of minutes (DeepSpeed reads it with Python's int())";
  if (!well_formed) {
    if (number.find_first_of(".eE") != std::string_view::npos) {
      refuse(text, whole + "; fractions of a minute are not taken: set InitOptions::timeout from code for a "
                           "shorter timeout");
    }
    refuse(text, whole);
  }
  if (negative || minutes == 0) refuse(text, "expected at least 1 minute");
  if (too_large) refuse(text, "expected at most " + std::to_string(kMaxTimeoutMinutes) + " minutes");
  return std::chrono::minutes(minutes);
}

std::chrono::milliseconds deepspeed_timeout_from_environment() {
  const char* value = std::getenv("DEEPSPEED_TIMEOUT");
  return parse_deepspeed_timeout(value ? std::optional<std::string_view>(value) : std::nullopt);
}

}  // namespace deepspeed::comm
