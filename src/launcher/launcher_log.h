// The launcher's own messages (not the ranks'): on stderr, prefixed "deepspeed: ", filtered
// by --log_level / -q like DeepSpeed's launcher logger.
#pragma once

#include <string>
#include <string_view>

namespace deepspeed::launcher {

enum class LogLevel { kDebug = 0, kInfo, kWarning, kError, kCritical };

// "debug", "info", "warning", "error", "critical" (case-insensitive); LaunchError otherwise.
LogLevel parse_log_level(std::string_view name);
std::string_view log_level_name(LogLevel level);

class LauncherLog {
 public:
  explicit LauncherLog(LogLevel level = LogLevel::kInfo) : level_(level) {}
  void debug(std::string_view message) const { write(LogLevel::kDebug, message); }
  void info(std::string_view message) const { write(LogLevel::kInfo, message); }
  void warning(std::string_view message) const { write(LogLevel::kWarning, message); }
  void error(std::string_view message) const { write(LogLevel::kError, message); }
  LogLevel level() const { return level_; }

 private:
  void write(LogLevel level, std::string_view message) const;
  LogLevel level_;
};

}  // namespace deepspeed::launcher
