#include "launcher/resources.h"

namespace deepspeed::launcher {

Resources expand_pool(const HostPool& pool) {
  Resources out;
  out.reserve(pool.size());
  for (const auto& h : pool) {
    HostDevices d{h.host, {}};
    for (int i = 0; i < h.slots; ++i) d.slots.push_back(i);
    out.push_back(std::move(d));
  }
  return out;
}

int total_slots(const Resources& resources) {
  int n = 0;
  for (const auto& h : resources) n += static_cast<int>(h.slots.size());
  return n;
}

int total_slots(const HostPool& pool) {
  int n = 0;
  for (const auto& h : pool) n += h.slots;
  return n;
}

int find_host(const Resources& resources, const std::string& host) {
  for (size_t i = 0; i < resources.size(); ++i)
    if (resources[i].host == host) return static_cast<int>(i);
  return -1;
}

}  // namespace deepspeed::launcher
