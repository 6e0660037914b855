#include "runtime/logger.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include <deepspeed/errors.h>

namespace deepspeed {

LogLevel parse_log_level(const std::string& name) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n == "debug") return LogLevel::Debug;
  if (n == "info") return LogLevel::Info;
  if (n == "warning" || n == "warn") return LogLevel::Warning;
  if (n == "error" || n == "critical") return LogLevel::Error;
  throw ConfigError("log_level", "expected one of debug, info, warning, error, critical; got '" + name + "'");
}

void Logger::log(LogLevel level, std::string_view message, bool all_ranks,
                 std::source_location where) const {
  if (level < level_ || (!all_ranks && rank_ != 0)) return;
  const char* name = level == LogLevel::Debug ? "DEBUG"
                     : level == LogLevel::Info ? "INFO"
                     : level == LogLevel::Warning ? "WARNING"
                                                  : "ERROR";
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
  std::string file = where.file_name();
  if (auto slash = file.rfind('/'); slash != std::string::npos) file = file.substr(slash + 1);
  std::string func = where.function_name();
  // "void deepspeed::Engine::step()" -> "step"
  if (auto paren = func.find('('); paren != std::string::npos) func = func.substr(0, paren);
  if (auto colon = func.rfind(':'); colon != std::string::npos) func = func.substr(colon + 1);
  if (auto space = func.rfind(' '); space != std::string::npos) func = func.substr(space + 1);
  auto line = fmt::format("[{},{:03d}] [{}] [{}:{}:{}] {}\n", stamp, static_cast<int>(ms), name, file,
                          where.line(), func, message);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace deepspeed
