// What a job runs on: hosts in hostfile order, each with its slots (accelerator indices, or
// plain process slots on a CPU machine). Order matters everywhere: global ranks are handed
// out host by host in this order, and world_info encodes it.
#pragma once

#include <string>
#include <vector>

namespace deepspeed::launcher {

// The most slots one host may have (hostfile `slots=`, `--num_gpus`, world_info). Far above
// any machine's accelerators or cores; it keeps a typo such as `slots=80000000` from making
// the launcher plan (and allocate for) tens of millions of ranks.
inline constexpr int kMaxSlotsPerHost = 4096;

// One hostfile line: `worker-1 slots=4`.
struct HostSlots {
  std::string host;
  int slots = 0;
  bool operator==(const HostSlots&) const = default;
};
using HostPool = std::vector<HostSlots>;

// One host of the active resources with the slot ids used on it, ascending.
struct HostDevices {
  std::string host;
  std::vector<int> slots;
  bool operator==(const HostDevices&) const = default;
};
using Resources = std::vector<HostDevices>;

// {host, slots=n} -> {host, [0..n)}; hosts with 0 slots are kept (with no slots).
Resources expand_pool(const HostPool& pool);

int total_slots(const Resources& resources);
int total_slots(const HostPool& pool);

// Index of host in resources, or -1.
int find_host(const Resources& resources, const std::string& host);

}  // namespace deepspeed::launcher
