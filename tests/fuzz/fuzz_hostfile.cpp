// Hostfile text (-H/--hostfile). The parser promises a host pool or a LaunchError naming the
// file and line, whose message is whole and printable (no NUL, no control bytes: a binary
// file's bytes are quoted escaped); the pool it accepts must expand to the resources the
// launcher plans with.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>

#include "deepspeed/errors.h"
#include "launcher/hostfile.h"
#include "launcher/resources.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto pool = deepspeed::launcher::parse_hostfile(in, "fuzz_hostfile");
    const auto resources = deepspeed::launcher::expand_pool(pool);
    if (deepspeed::launcher::total_slots(resources) != deepspeed::launcher::total_slots(pool)) __builtin_trap();
  } catch (const deepspeed::LaunchError& e) {
    for (const char* p = e.what(); *p; ++p) {
      const auto byte = static_cast<unsigned char>(*p);
      if (byte < 0x20 || byte >= 0x7f) __builtin_trap();
    }
  }
  return 0;
}
