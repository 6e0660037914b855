#include "runtime/uncaught_exception_report.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <typeinfo>

#include <c10/util/Exception.h>
#include <c10/util/Type.h>
#include <cxxabi.h>
#include <fmt/format.h>

namespace deepspeed {
namespace {

std::string current_exception_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  return type ? c10::demangle(type->name()) : std::string("unknown exception");
}

[[noreturn]] void report_and_exit() {
  std::fflush(stdout);
  std::cout.flush();
  const char* show = std::getenv(kShowCppStacktracesEnv);
  const bool stack = show && std::string(show) == "1";
  std::string line = "terminate called without an active exception";
  if (auto error = std::current_exception()) line = uncaught_exception_line(error, stack);
  const char* rank = std::getenv("RANK");
  std::fputs(fmt::format("{}{}\n", rank ? fmt::format("[rank {}] ", rank) : "", line).c_str(), stderr);
  std::fflush(stderr);
  std::_Exit(1);
}

}  // namespace

std::string uncaught_exception_line(const std::exception_ptr& error, bool with_stack_trace) {
  try {
    std::rethrow_exception(error);
  } catch (const c10::Error& e) {
    return fmt::format("uncaught {}: {}", current_exception_type(),
                       with_stack_trace ? e.what() : e.what_without_backtrace());
  } catch (const std::exception& e) {
    return fmt::format("uncaught {}: {}", current_exception_type(), e.what());
  } catch (...) {
    return fmt::format("uncaught {}", current_exception_type());
  }
}

void report_uncaught_exceptions_briefly() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__GLIBCXX__)
    // Only over the C++ runtime's default report: a handler the program set stays.
    if (std::get_terminate() != __gnu_cxx::__verbose_terminate_handler) return;
#endif
    std::set_terminate(report_and_exit);
  });
}

}  // namespace deepspeed
