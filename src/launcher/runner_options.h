// Everything the `deepspeed` command line says (docs/launcher.md, "Flags"), after parsing.
// The runner
// (launch_plan.h) turns it into resources, an environment and the commands to run.
#pragma once

#include <string>
#include <vector>

#include "launcher/launcher_log.h"

namespace deepspeed::launcher {

struct RunnerOptions {
  std::string hostfile = "/job/hostfile";
  bool hostfile_given = false;
  std::string include;
  std::string exclude;
  int num_nodes = -1;
  int num_gpus = -1;
  std::string master_addr;  // empty: inferred
  int master_port = 29500;
  int node_rank = -1;        // only with no_ssh
  std::string launcher = "pdsh";
  std::string launcher_args;
  bool module = false;
  bool no_python = false;
  bool no_local_rank = false;
  bool no_ssh = false;
  bool no_ssh_check = false;
  bool force_multi = false;
  bool save_pid = false;
  std::string enable_each_rank_log;  // directory; empty = off ("None" in DeepSpeed)
  bool bind_cores_to_rank = false;
  std::string bind_core_list;
  int ssh_port = -1;
  std::string venv_script;
  std::string comment;       // slurm: srun --comment
  double term_grace_s = 30;  // ours: SIGTERM -> SIGKILL grace (DeepSpeed: fixed 30 s)
  LogLevel log_level = LogLevel::kInfo;
  bool dry_run = false;
  std::string program;
  std::vector<std::string> program_args;
};

// The launchers --launcher accepts, lower case.
const std::vector<std::string>& known_launchers();

}  // namespace deepspeed::launcher
