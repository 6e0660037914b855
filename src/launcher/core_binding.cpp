#include "launcher/core_binding.h"

#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <cstdlib>
#include <map>
#include <set>

#include "deepspeed/errors.h"

namespace deepspeed::launcher {
namespace {

int parse_int(std::string_view s, std::string_view whole) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0)
    throw LaunchError(fmt::format("--bind_core_list: Bad range: '{}' in '{}' (expected e.g. 1,3-5,7)", s, whole));
  return v;
}

}  // namespace

std::vector<int> parse_core_list(std::string_view text) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == text.npos ? text.npos : comma - start);
    auto dash = item.find('-');
    int lo = 0, hi = 0;
    if (dash == item.npos) {
      lo = hi = parse_int(item, text);
    } else {
      lo = parse_int(item.substr(0, dash), text);
      hi = parse_int(item.substr(dash + 1), text);
      if (hi < lo)
        throw LaunchError(fmt::format("--bind_core_list: Bad range: '{}' ends before it starts", item));
    }
    if (!out.empty() && lo <= out.back())
      throw LaunchError(fmt::format(
          "--bind_core_list: Bad range: '{}' is not above the cores before it (ranges must be "
          "ascending and non-overlapping)", item));
    for (int c = lo; c <= hi; ++c) out.push_back(c);
    if (comma == text.npos) break;
    start = comma + 1;
  }
  return out;
}

std::string compress_core_list(const std::vector<int>& cores) {
  std::string out;
  for (size_t i = 0; i < cores.size();) {
    size_t j = i;
    while (j + 1 < cores.size() && cores[j + 1] == cores[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? std::to_string(cores[i]) : fmt::format("{}-{}", cores[i], cores[j]);
    i = j + 1;
  }
  return out;
}

std::vector<std::vector<int>> assign_cores(const std::vector<int>& cores, int local_size) {
  if (local_size <= 0) return {};
  const size_t per_rank = cores.size() / static_cast<size_t>(local_size);
  if (per_rank < 1)
    throw LaunchError(fmt::format(
        "--bind_cores_to_rank: {} core(s) cannot be shared by {} local ranks (at least one each)",
        cores.size(), local_size));
  std::vector<std::vector<int>> out;
  for (int r = 0; r < local_size; ++r)
    out.emplace_back(cores.begin() + r * per_rank, cores.begin() + (r + 1) * per_rank);
  return out;
}

std::vector<int> default_core_list() {
  // Physical core of each logical CPU, from /proc/cpuinfo ("processor", "physical id",
  // "core id" lines); empty when the file does not say.
  std::map<int, std::pair<std::string, std::string>> core_of;
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line, physical = "0";
    int processor = -1;
    while (std::getline(in, line)) {
      auto colon = line.find(':');
      if (colon == line.npos || colon == 0) continue;
      std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
      std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
      if (key == "processor") processor = std::atoi(value.c_str());
      if (key == "physical id") physical = value;
      if (key == "core id" && processor >= 0) core_of[processor] = {physical, value};
    }
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  std::set<std::pair<std::string, std::string>> seen;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    auto it = core_of.find(cpu);
    if (it != core_of.end() && !seen.insert(it->second).second) continue;  // a hyperthread
    out.push_back(cpu);
  }
  return out;
}

}  // namespace deepspeed::launcher
