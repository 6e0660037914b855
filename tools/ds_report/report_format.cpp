#include "report_format.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace deepspeed::report {
namespace {

constexpr std::string_view kGreen = "\033[92m";
constexpr std::string_view kYellow = "\033[93m";
constexpr std::string_view kRed = "\033[91m";
constexpr std::string_view kEnd = "\033[0m";

std::string paint(bool color, std::string_view code, std::string_view text) {
  if (!color) return std::string(text);
  return std::string(code) + std::string(text) + std::string(kEnd);
}

std::string dots(int n) { return std::string(n > 0 ? static_cast<size_t>(n) : 0, '.'); }

}  // namespace

std::string Style::okay() const { return paint(color, kGreen, "[OKAY]"); }
std::string Style::yes() const { return paint(color, kGreen, "[YES]"); }
std::string Style::no() const { return paint(color, kYellow, "[NO]"); }
std::string Style::fail() const { return paint(color, kRed, "[FAIL]"); }
std::string Style::warning() const { return paint(color, kYellow, "[WARNING]"); }

Style detect_style() {
  const char* term = std::getenv("TERM");
  const bool dumb = term && std::strcmp(term, "dumb") == 0;
  return Style{::isatty(STDOUT_FILENO) == 1 && !dumb && std::getenv("NO_COLOR") == nullptr};
}

std::string env_line(std::string_view name, std::string_view value) {
  return std::string(name) + " " + dots(33 - static_cast<int>(name.size())) + " " + std::string(value);
}

std::string op_line(std::string_view name, std::string_view installed, size_t installed_visible_len,
                    std::string_view compatible) {
  return std::string(name) + " " + dots(23 - static_cast<int>(name.size())) + " " + std::string(installed) + " " +
         dots(11 - static_cast<int>(installed_visible_len)) + " " + std::string(compatible);
}

}  // namespace deepspeed::report
