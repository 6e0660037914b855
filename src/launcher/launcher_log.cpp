#include "launcher/launcher_log.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "deepspeed/errors.h"

namespace deepspeed::launcher {

LogLevel parse_log_level(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  if (lower == "critical") return LogLevel::kCritical;
  throw LaunchError("--log_level: '" + std::string(name) +
                    "' is not one of debug, info, warning, error, critical");
}

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
    case LogLevel::kCritical: return "critical";
  }
  return "info";
}

void LauncherLog::write(LogLevel level, std::string_view message) const {
  if (level < level_) return;
  // One write(2) per line so that lines of several launchers sharing a terminal stay whole.
  std::string line = "deepspeed: ";
  if (level >= LogLevel::kWarning) line += level == LogLevel::kWarning ? "warning: " : "error: ";
  line += message;
  line += '\n';
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace deepspeed::launcher
