// Quoting for the command strings a remote shell runs (pdsh, ssh). A word made only of
// characters no shell treats specially ([A-Za-z0-9_@%+=:,./-]) is left bare, so commands
// read as DeepSpeed's do; anything else is wrapped in single quotes, with each ' written as
// '\'' . Unlike DeepSpeed's "..." wrapping, values holding quotes, $, ` or \ survive.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace deepspeed::launcher {

bool is_shell_safe(std::string_view word);
std::string shell_quote(std::string_view word);
// The words quoted and joined by single spaces.
std::string shell_join(const std::vector<std::string>& words);
// POSIX-shell-like splitting of --launcher_args (quotes and backslashes; no expansion).
// LaunchError on an unterminated quote.
std::vector<std::string> shell_split(std::string_view text);

}  // namespace deepspeed::launcher
