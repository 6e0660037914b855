// The one error family of the example's data readers: a data file that is missing, truncated
// or not in the format expected. The message always starts with the file's path, so that
// "what do I fix" needs no debugger.
#pragma once

#include <string>

#include <deepspeed/errors.h>

namespace cifar10 {

class DataError : public deepspeed::Error {
 public:
  DataError(const std::string& file, const std::string& what) : deepspeed::Error(file + ": " + what), file_(file) {}
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

}  // namespace cifar10
