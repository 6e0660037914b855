// DeepSpeed's ds_report line format: 50-dash separators, dotted columns, ANSI colours
// ([OKAY]/[YES] green, [NO] yellow) only when stdout is a terminal.
#pragma once

#include <string>
#include <string_view>

namespace deepspeed::report {

inline constexpr std::string_view kSeparator = "--------------------------------------------------";

struct Style {
  bool color = false;
  std::string okay() const;  // "[OKAY]"
  std::string yes() const;   // "[YES]"
  std::string no() const;    // "[NO]"
  std::string fail() const;  // "[FAIL]"
  std::string warning() const;  // "[WARNING]"
};

// Colours when stdout is a terminal, TERM is not "dumb" and NO_COLOR is unset.
Style detect_style();

// `name + ' ' + '.' * (33 - len(name)) + ' ' + value`: an environment line.
std::string env_line(std::string_view name, std::string_view value);

// `op_name + ' ' + '.' * (23 - len(op_name)) + ' ' + installed + ' ' + '.' * (11 - visible
// len(installed)) + ' ' + compatible`: an op row (and the header row).
std::string op_line(std::string_view name, std::string_view installed, size_t installed_visible_len,
                    std::string_view compatible);

}  // namespace deepspeed::report
