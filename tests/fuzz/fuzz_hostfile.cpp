// Hostfile text (-H/--hostfile). The parser promises a host pool or a LaunchError naming the
// file and line; the pool it accepts must expand to the resources the launcher plans with.
#include <cstddef>
#include <cstdint>
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
  } catch (const deepspeed::LaunchError&) {
  }
  return 0;
}
