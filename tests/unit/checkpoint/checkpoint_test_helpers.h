// Helpers shared by the checkpoint unit tests: manifest_test.cpp (no LibTorch; also built
// under ASan/UBSan by tests/sanitize) and checkpoint_format_test.cpp.
#pragma once

#include <span>
#include <string>

#include <deepspeed/errors.h>

namespace deepspeed::testing {

// The bytes of a string, as the checkpoint readers and writers take them.
inline std::span<const char> span_of(const std::string& s) { return {s.data(), s.size()}; }

// The message of the CheckpointError that f() throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace deepspeed::testing
