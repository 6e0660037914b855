// Log lines in DeepSpeed's format, from rank 0 only unless asked otherwise:
//   [2026-11-26 12:00:00,123] [INFO] [engine.cpp:120:step] message
// Each engine owns its logger (no process-wide logging state).
#pragma once

#include <cstdint>
#include <source_location>
#include <string>
#include <string_view>

namespace deepspeed {

enum class LogLevel { Debug = 10, Info = 20, Warning = 30, Error = 40 };

// "debug", "info", "warning", "error", "critical" (any case); throws ConfigError otherwise.
LogLevel parse_log_level(const std::string& name);

class Logger {
 public:
  Logger(int64_t rank, LogLevel level) : rank_(rank), level_(level) {}

  void log(LogLevel level, std::string_view message, bool all_ranks = false,
           std::source_location where = std::source_location::current()) const;
  void info(std::string_view message, std::source_location where = std::source_location::current()) const {
    log(LogLevel::Info, message, false, where);
  }
  void warning(std::string_view message,
               std::source_location where = std::source_location::current()) const {
    log(LogLevel::Warning, message, false, where);
  }
  bool enabled(LogLevel level) const { return level >= level_ && rank_ == 0; }
  int64_t rank() const { return rank_; }

 private:
  int64_t rank_;
  LogLevel level_;
};

}  // namespace deepspeed
