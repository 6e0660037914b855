// Sets (or, given nullptr, clears) an environment variable for one scope and restores what
// was there before: for tests of behaviour that an environment variable switches.
//
//   ScopedEnv simd("DS_CPU_SIMD", "scalar");
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace deepspeed::testing {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    set(value);
  }
  ~ScopedEnv() { set(old_ ? old_->c_str() : nullptr); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  void set(const char* value) const {
    if (value) {
      ::setenv(name_.c_str(), value, 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace deepspeed::testing
