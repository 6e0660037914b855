// What a rank prints when an exception escapes main (or any thread): one line on stderr,
// "[rank R] uncaught <type>: <message>", then exit status 1, instead of the C++ runtime's
// "terminate called after throwing ..." with LibTorch's stack trace of its own internals.
// TORCH_SHOW_CPP_STACKTRACES=1 in the environment prints the message with LibTorch's stack
// trace, as LibTorch itself does with that variable.
#pragma once

#include <exception>
#include <string>

namespace deepspeed {

inline constexpr const char* kShowCppStacktracesEnv = "TORCH_SHOW_CPP_STACKTRACES";

// Installs the report as the terminate handler, once, unless the program installed its own.
void report_uncaught_exceptions_briefly();

// The line for one exception (what the handler prints, without the rank prefix).
std::string uncaught_exception_line(const std::exception_ptr& error, bool with_stack_trace);

}  // namespace deepspeed
