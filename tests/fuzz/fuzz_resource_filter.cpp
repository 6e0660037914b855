// --include / --exclude filters with --num_nodes / --num_gpus, applied to a hostfile: three
// texts separated by NUL bytes, "<hostfile>\0<include>\0<exclude>", and two bytes for the
// limits. Promise: resources, or a LaunchError; what is selected is always part of the pool,
// and a filter never keeps a host without slots (unfiltered, a slots=0 host stays, as in
// DeepSpeed).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "deepspeed/errors.h"
#include "launcher/hostfile.h"
#include "launcher/resource_filter.h"

using namespace deepspeed::launcher;

namespace {

std::string_view next_field(std::string_view& rest) {
  const auto nul = rest.find('\0');
  const auto field = rest.substr(0, nul);
  rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  return field;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // -1 (unset) or 1..63: the flags' useful range.
  const int num_nodes = data[0] % 64 == 0 ? -1 : data[0] % 64;
  const int num_gpus = data[1] % 64 == 0 ? -1 : data[1] % 64;
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::istringstream hostfile{std::string(next_field(rest))};
  const auto include = next_field(rest);
  const auto exclude = next_field(rest);
  try {
    const auto pool = parse_hostfile(hostfile, "fuzz_hostfile");
    const auto all = expand_pool(pool);
    const auto selected = parse_inclusion_exclusion(pool, include, exclude);
    for (const auto& host : selected) {
      const int i = find_host(all, host.host);
      const bool filtered = !include.empty() || !exclude.empty();
      if (i < 0 || (filtered && host.slots.empty())) __builtin_trap();
      for (int slot : host.slots) {
        const auto& have = all[i].slots;
        if (std::find(have.begin(), have.end(), slot) == have.end()) __builtin_trap();
      }
    }
    (void)limit_resources(selected, num_nodes, num_gpus);
  } catch (const deepspeed::LaunchError&) {
  }
  return 0;
}
