// Error families of deepspeed-cpp. Each carries where the problem is (a JSON key path,
// file:line, a flag, a rank) and what was expected, so a message alone tells the user what
// to fix. Tools catch deepspeed::Error at the top and exit non-zero with what().
#pragma once

#include <stdexcept>
#include <string>

namespace deepspeed {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ds_config.json: syntax (with line:column), types, values, unknown keys, batch sizes.
class ConfigError : public Error {
 public:
  ConfigError(std::string path, const std::string& message)
      : Error(path.empty() ? message : path + ": " + message), path_(std::move(path)) {}
  // JSON path of the offending key ("zero_optimization.stage"), empty for whole-file errors.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Hostfile, resource filters, launcher flags, programs that cannot be started.
class LaunchError : public Error {
 public:
  using Error::Error;
};

// Checkpoint files that are missing, truncated, corrupt or inconsistent.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

// Process-group set-up and collectives (rendezvous timeouts, a peer that died).
class CommError : public Error {
 public:
  using Error::Error;
};

// Asynchronous file I/O (the async_io op, deepspeed/async_io.h): a file that cannot be opened,
// a short read or write, an I/O error; each names the file, the offset and the system's error.
class AioError : public Error {
 public:
  using Error::Error;
};

// Misuse of the engine API (backward without an optimizer, a non-scalar loss, ...).
class EngineError : public Error {
 public:
  using Error::Error;
};

// Misuse of an op's tensor API (deepspeed/transformer.h, deepspeed/flatten.h): a config field
// out of range, tensors whose shape, dtype or device do not match; each names the op, the
// field or argument, and what was expected.
class OpError : public Error {
 public:
  using Error::Error;
};

}  // namespace deepspeed
