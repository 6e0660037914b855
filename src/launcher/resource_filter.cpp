#include "launcher/resource_filter.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <string>

#include "deepspeed/errors.h"

namespace deepspeed::launcher {
namespace {

constexpr char kNodeSep = '@';
constexpr char kSlotListStart = ':';
constexpr char kSlotSep = ',';

struct NodeSpec {
  std::string host;
  bool whole_host = false;  // a bare NAME appeared
  std::set<int> slots;
};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? s.npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

int parse_slot(std::string_view text, std::string_view spec, std::string_view flag) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    throw LaunchError(fmt::format(
        "{}: bad slot '{}' in '{}' (expected NAME[:SLOT[,SLOT...]] with integer slots)", flag,
        text, spec));
  }
  return value;
}

// Parses the filter into specs, merging repeated hosts, in first-mention order.
std::vector<NodeSpec> parse_specs(std::string_view filter, std::string_view flag) {
  std::vector<NodeSpec> specs;
  for (std::string_view node : split(filter, kNodeSep)) {
    NodeSpec spec;
    auto colon = node.find(kSlotListStart);
    if (colon == std::string_view::npos) {
      spec.host = std::string(node);
      spec.whole_host = true;
    } else {
      spec.host = std::string(node.substr(0, colon));
      std::string_view slot_list = node.substr(colon + 1);
      if (slot_list.find(kSlotListStart) != std::string_view::npos) {
        throw LaunchError(fmt::format(
            "{}: bad node spec '{}' (expected NAME[:SLOT[,SLOT...]], one ':')", flag, node));
      }
      for (std::string_view s : split(slot_list, kSlotSep)) spec.slots.insert(parse_slot(s, node, flag));
    }
    auto it = std::find_if(specs.begin(), specs.end(),
                           [&](const NodeSpec& s) { return s.host == spec.host; });
    if (it == specs.end()) {
      specs.push_back(std::move(spec));
    } else {
      it->whole_host = it->whole_host || spec.whole_host;
      it->slots.insert(spec.slots.begin(), spec.slots.end());
    }
  }
  return specs;
}

}  // namespace

Resources parse_resource_filter(const Resources& hosts, std::string_view include,
                                std::string_view exclude) {
  if (!include.empty() && !exclude.empty()) {
    throw LaunchError("--include and --exclude are mutually exclusive (include_str and "
                      "exclude_str are mutually exclusive.)");
  }
  if (include.empty() && exclude.empty()) return hosts;
  const bool including = !include.empty();
  const std::string_view flag = including ? "--include" : "--exclude";
  const auto specs = parse_specs(including ? include : exclude, flag);

  // Validate every spec against the pool before changing anything.
  for (const auto& spec : specs) {
    int idx = find_host(hosts, spec.host);
    if (idx < 0) {
      throw LaunchError(
          fmt::format("{}: Hostname '{}' not found in hostfile", flag, spec.host));
    }
    const auto& have = hosts[idx].slots;
    for (int slot : spec.slots) {
      if (std::find(have.begin(), have.end(), slot) == have.end()) {
        throw LaunchError(fmt::format("{}: No slot '{}' specified on host '{}'", flag, slot,
                                      spec.host));
      }
    }
  }

  Resources out;
  for (const auto& host : hosts) {
    auto it = std::find_if(specs.begin(), specs.end(),
                           [&](const NodeSpec& s) { return s.host == host.host; });
    HostDevices kept{host.host, {}};
    if (including) {
      if (it == specs.end()) continue;
      if (it->whole_host) {
        kept.slots = host.slots;
      } else {
        kept.slots.assign(it->slots.begin(), it->slots.end());
      }
    } else {
      if (it != specs.end() && it->whole_host) continue;
      for (int slot : host.slots)
        if (it == specs.end() || !it->slots.count(slot)) kept.slots.push_back(slot);
    }
    std::sort(kept.slots.begin(), kept.slots.end());
    kept.slots.erase(std::unique(kept.slots.begin(), kept.slots.end()), kept.slots.end());
    if (!kept.slots.empty()) out.push_back(std::move(kept));
  }
  return out;
}

Resources parse_inclusion_exclusion(const HostPool& pool, std::string_view include,
                                    std::string_view exclude) {
  return parse_resource_filter(expand_pool(pool), include, exclude);
}

Resources limit_resources(Resources resources, int num_nodes, int num_gpus) {
  if (num_nodes > 0) {
    if (static_cast<size_t>(num_nodes) > resources.size()) {
      throw LaunchError(fmt::format(
          "--num_nodes={} but only {} host{} available (after the hostfile and filters)",
          num_nodes, resources.size(), resources.size() == 1 ? " is" : "s are"));
    }
    resources.resize(static_cast<size_t>(num_nodes));
  }
  if (num_gpus > kMaxSlotsPerHost) {
    throw LaunchError(fmt::format("--num_gpus={}: at most {} slots per host", num_gpus, kMaxSlotsPerHost));
  }
  if (num_gpus > 0) {
    for (auto& host : resources) {
      host.slots.clear();
      for (int i = 0; i < num_gpus; ++i) host.slots.push_back(i);
    }
  }
  return resources;
}

}  // namespace deepspeed::launcher
