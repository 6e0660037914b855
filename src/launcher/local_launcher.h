// The node-local launcher (DeepSpeed's launch.py): given the job's world_info and this
// node's rank, starts one process per local slot with the rank environment
// (rank_environment.h) and supervises them (process_supervisor.h).
//
// Rank command: [numactl [-m N | -p N] -C <cores>] [python3 -u [-m]] PROGRAM [--local_rank=N] ARGS...
// - a PROGRAM ending in .py runs under python3 -u unless no_python; module runs python3 -u -m;
// - with bind_cores_to_rank, each rank is bound to its share of the cores (core_binding.h)
//   and, where its cores lie in one NUMA node, to that node's memory (numa_binding.h);
// - --local_rank=N is inserted right after PROGRAM unless no_local_rank, as DeepSpeed;
// - with more than one rank in the job each output line is prefixed "[rank<R>]: ", unless
//   each_rank_log_dir sends rank R's output to <dir>/<YYYYmmddHHMMSS>_rank<R>.log.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "launcher/launcher_log.h"
#include "launcher/numa_binding.h"
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
  // Set for every rank of this node on top of the rank environment (pod.env's FC_* lines).
  std::vector<std::pair<std::string, std::string>> node_env;
};

// How ranks are bound to their cores when bind_cores_to_rank is on.
struct CoreBinder {
  bool numactl = false;  // numactl in front of the command; else sched_setaffinity in the child
  NumaTopology numa;     // numactl's memory flags come from it; empty: `numactl -C` only
};

// The child processes for this node; `timestamp` names the per-rank log files.
std::vector<ChildSpec> build_rank_children(const LocalLaunchOptions& options, const CoreBinder& binder,
                                           const std::string& timestamp);

// The binder run_local_launch uses: numactl with this machine's NUMA layout when numactl is
// installed. Each rank's numactl part is tried first (`numactl ... true`): when numactl is
// refused memory binding (no CAP_SYS_NICE in a container) it falls back to `numactl -C`,
// and when even that is refused, to sched_setaffinity, saying which in `notes`; any other
// numactl failure is a LaunchError quoting numactl.
using BindingNote = std::pair<LogLevel, std::string>;
CoreBinder choose_core_binder(const LocalLaunchOptions& options, std::vector<BindingNote>& notes);

// Starts and supervises this node's ranks; returns the launcher's exit code.
int run_local_launch(const LocalLaunchOptions& options);

// Whether `name` is an executable in PATH.
bool program_in_path(const std::string& name);

}  // namespace deepspeed::launcher
