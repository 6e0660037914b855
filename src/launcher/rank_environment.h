// The environment contract between the launcher and a rank (what init_distributed reads):
//   RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_SIZE, CROSS_RANK, CROSS_SIZE, MASTER_ADDR,
//   MASTER_PORT, CUDA_VISIBLE_DEVICES.
// Global ranks are contiguous per node in world_info order (node 0 gets 0..n0-1, ...).
// LOCAL_RANK is the rank's index on its node (docs/compatibility.md, "Launcher"; DeepSpeed uses
// RANK mod LOCAL_SIZE, which rotates local ranks when nodes have unequal slot counts).
// CUDA_VISIBLE_DEVICES is the node's slot list, the same for every local rank, as DeepSpeed.
// The job's run id (kRunIdVariable) comes with the exported environment (launch_plan.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "launcher/resources.h"

namespace deepspeed::launcher {

// The job's identity in the rendezvous, the same on every rank of one job (ours; torchrun's
// counterpart is --rdzv_id): init_distributed keys the store with it.
inline constexpr const char* kRunIdVariable = "DEEPSPEED_RUN_ID";

struct RankEnvironment {
  std::string host;
  int node_rank = 0;
  int rank = 0;
  int local_rank = 0;
  std::map<std::string, std::string> env;  // the contract variables above
};

// The ranks of one node (node_rank indexes `world`); LaunchError when out of range.
std::vector<RankEnvironment> node_rank_environments(const Resources& world, int node_rank,
                                                    const std::string& master_addr,
                                                    int master_port);

// Every rank of the job, node by node (for --dry_run).
std::vector<RankEnvironment> all_rank_environments(const Resources& world,
                                                   const std::string& master_addr,
                                                   int master_port);

}  // namespace deepspeed::launcher
