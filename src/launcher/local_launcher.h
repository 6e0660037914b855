// The node-local launcher (DeepSpeed's launch.py): given the job's world_info and this
// node's rank, starts one process per local slot with the rank environment
// (rank_environment.h) and supervises them (process_supervisor.h).
//
// Rank command: [numactl -C <cores>] [python3 -u [-m]] PROGRAM [--local_rank=N] ARGS...
// - a PROGRAM ending in .py runs under python3 -u unless no_python; module runs python3 -u -m;
// - --local_rank=N is inserted right after PROGRAM unless no_local_rank, as DeepSpeed;
// - with more than one rank in the job each output line is prefixed "[rank<R>]: ", unless
//   each_rank_log_dir sends rank R's output to <dir>/<YYYYmmddHHMMSS>_rank<R>.log.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "launcher/launcher_log.h"
#include "launcher/process_supervisor.h"
#include "launcher/resources.h"

namespace deepspeed::launcher {

struct LocalLaunchOptions {
  Resources world;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string program;
  std::vector<std::string> program_args;
  bool module = false;
  bool no_python = false;
  bool no_local_rank = false;
  int save_pid = -1;  // >= 0: write this process's pid to /tmp/<save_pid>.deepspeed
  std::string each_rank_log_dir;
  bool bind_cores_to_rank = false;
  std::string bind_core_list;
  std::chrono::milliseconds term_grace{30000};
  bool watch_stdin = false;
  LogLevel log_level = LogLevel::kInfo;
};

// The child processes for this node. `have_numactl` picks numactl or sched_setaffinity for
// core binding; `timestamp` names the per-rank log files.
std::vector<ChildSpec> build_rank_children(const LocalLaunchOptions& options, bool have_numactl,
                                           const std::string& timestamp);

// Starts and supervises this node's ranks; returns the launcher's exit code.
int run_local_launch(const LocalLaunchOptions& options);

// Whether `name` is an executable in PATH.
bool program_in_path(const std::string& name);

}  // namespace deepspeed::launcher
