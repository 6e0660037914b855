// File text as an error message can quote it: a NUL would cut the message short where it is
// printed as a C string, and control bytes (a binary file given as a hostfile) would reach
// the user's terminal. Printable ASCII stays as it is; a backslash becomes "\\", a tab "\t",
// and every other byte "\xNN", so the quoted text is still exact.
#pragma once

#include <string>
#include <string_view>

namespace deepspeed::launcher {

std::string printable_text(std::string_view text);

}  // namespace deepspeed::launcher
