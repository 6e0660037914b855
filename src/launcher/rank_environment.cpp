#include "launcher/rank_environment.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "deepspeed/errors.h"

namespace deepspeed::launcher {

std::vector<RankEnvironment> node_rank_environments(const Resources& world, int node_rank,
                                                    const std::string& master_addr,
                                                    int master_port) {
  if (node_rank < 0 || static_cast<size_t>(node_rank) >= world.size()) {
    throw LaunchError(fmt::format("--node_rank={} but world_info has {} node(s)", node_rank,
                                  world.size()));
  }
  int first_rank = 0;
  for (int n = 0; n < node_rank; ++n) first_rank += static_cast<int>(world[n].slots.size());
  const auto& node = world[node_rank];
  const int local_size = static_cast<int>(node.slots.size());
  const std::string visible = fmt::format("{}", fmt::join(node.slots, ","));

  std::vector<RankEnvironment> out;
  for (int local = 0; local < local_size; ++local) {
    RankEnvironment r;
    r.host = node.host;
    r.node_rank = node_rank;
    r.rank = first_rank + local;
    r.local_rank = local;
    r.env = {
        {"RANK", std::to_string(r.rank)},
        {"LOCAL_RANK", std::to_string(local)},
        {"WORLD_SIZE", std::to_string(total_slots(world))},
        {"LOCAL_SIZE", std::to_string(local_size)},
        {"CROSS_RANK", std::to_string(node_rank)},
        {"CROSS_SIZE", std::to_string(world.size())},
        {"MASTER_ADDR", master_addr},
        {"MASTER_PORT", std::to_string(master_port)},
        {"CUDA_VISIBLE_DEVICES", visible},
    };
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<RankEnvironment> all_rank_environments(const Resources& world,
                                                   const std::string& master_addr,
                                                   int master_port) {
  std::vector<RankEnvironment> out;
  for (size_t n = 0; n < world.size(); ++n) {
    auto node = node_rank_environments(world, static_cast<int>(n), master_addr, master_port);
    out.insert(out.end(), node.begin(), node.end());
  }
  return out;
}

}  // namespace deepspeed::launcher
