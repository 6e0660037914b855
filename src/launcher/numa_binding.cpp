#include "launcher/numa_binding.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "launcher/core_binding.h"
#include "launcher/system_probe.h"

namespace deepspeed::launcher {
namespace {

std::optional<int> parse_numa_int(std::string_view s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool node_has_cores(const std::vector<int>& node_cpus, const std::vector<int>& cores) {
  return std::all_of(cores.begin(), cores.end(), [&](int c) {
    return std::find(node_cpus.begin(), node_cpus.end(), c) != node_cpus.end();
  });
}

}  // namespace

NumaTopology parse_numactl_hardware(std::string_view text) {
  NumaTopology out;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    // "node 1 cpus: 8 9 10 11" (no CPUs after the colon for a memory-only node)
    std::istringstream words(line);
    std::string node, id, cpus;
    if (!(words >> node >> id >> cpus) || node != "node" || cpus != "cpus:") continue;
    const auto node_id = parse_numa_int(id);
    if (!node_id) continue;
    NumaNode n{*node_id, {}};
    for (std::string w; words >> w;)
      if (auto cpu = parse_numa_int(w)) n.cpus.push_back(*cpu);
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<std::string> numa_memory_flags(const NumaTopology& numa, const std::vector<int>& rank_cores) {
  if (rank_cores.empty()) return {};
  // DeepSpeed's classification, by position in numactl's list.
  std::vector<size_t> empty, non_empty;
  std::vector<std::vector<size_t>> fake_groups;  // runs of consecutive nodes with identical CPUs
  std::vector<size_t> group;
  const std::vector<int>* previous = nullptr;
  for (size_t i = 0; i < numa.size(); ++i) {
    if (numa[i].cpus.empty()) {
      empty.push_back(i);
    } else {
      non_empty.push_back(i);
      if (previous && numa[i].cpus == *previous) {
        if (group.empty()) group.push_back(i - 1);
        group.push_back(i);
      } else if (!group.empty()) {
        fake_groups.push_back(std::move(group));
        group.clear();
      }
    }
    previous = &numa[i].cpus;
  }
  if (!group.empty()) fake_groups.push_back(std::move(group));

  if (!empty.empty() && empty.size() == non_empty.size()) {
    // Flat-mode HBM: prefer (-p) the high-bandwidth node paired with the rank's CPU node;
    // -p falls back to other memory when it is full, where -m would fail allocations.
    for (size_t k = 0; k < non_empty.size(); ++k)
      if (node_has_cores(numa[non_empty[k]].cpus, rank_cores)) return {"-p", std::to_string(numa[empty[k]].id)};
    return {};
  }
  if (!fake_groups.empty()) {
    // Fake NUMA (e.g. sub-NUMA clustering reported per memory controller): bind to the
    // whole group that shares the rank's CPUs.
    for (size_t i = 0; i < numa.size(); ++i) {
      if (!node_has_cores(numa[i].cpus, rank_cores)) continue;
      for (const auto& g : fake_groups) {
        if (std::find(g.begin(), g.end(), i) == g.end()) continue;
        std::vector<int> ids;
        for (size_t pos : g) ids.push_back(numa[pos].id);
        return {"-m", fmt::format("{}", fmt::join(ids, ","))};
      }
    }
    return {};
  }
  // Normal: memory from the node that holds all of the rank's cores, if one does.
  for (const auto& n : numa)
    if (!n.cpus.empty() && node_has_cores(n.cpus, rank_cores)) return {"-m", std::to_string(n.id)};
  return {};
}

std::vector<std::string> numactl_command(const NumaTopology& numa, const std::vector<int>& rank_cores) {
  std::vector<std::string> cmd = {"numactl"};
  for (auto& f : numa_memory_flags(numa, rank_cores)) cmd.push_back(std::move(f));
  cmd.insert(cmd.end(), {"-C", compress_core_list(rank_cores)});
  return cmd;
}

NumaTopology read_numa_topology() {
  std::string out;
  if (run_and_capture({"numactl", "--hardware"}, out) != 0) return {};
  return parse_numactl_hardware(out);
}

std::optional<std::string> numactl_error(const std::vector<std::string>& numactl_argv) {
  auto argv = numactl_argv;
  argv.push_back("true");
  std::string out;
  const int rc = run_and_capture(argv, out, /*include_stderr=*/true);
  if (rc == 0) return std::nullopt;
  if (rc == -1) return fmt::format("cannot run {}", argv.at(0));
  // One line, as DeepSpeed reports it.
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  std::string message;
  for (char c : out) message += c == '\n' ? std::string("; ") : std::string(1, c);
  return message.empty() ? fmt::format("exit code {}", rc) : message;
}

bool is_numa_permission_error(std::string_view message) {
  std::string lower(message);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower.find("operation not permitted") != std::string::npos ||
         lower.find("permission denied") != std::string::npos;
}

}  // namespace deepspeed::launcher
