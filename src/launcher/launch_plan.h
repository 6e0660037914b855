// The runner (DeepSpeed's runner.py): from the command line and the machine to
// the resolved resources, master address, environment and the exact commands to run.
// Planning runs nothing but the ssh reachability/address queries of multi-node runs (and
// not even those for --dry_run); execute_plan() then runs the commands.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "launcher/environment_exports.h"
#include "launcher/rank_environment.h"
#include "launcher/resources.h"
#include "launcher/runner_options.h"
#include "launcher/system_probe.h"

namespace deepspeed::launcher {

// One process the runner starts: a node-local launcher (exec'd in place for a single-node
// run), an ssh per host, or one pdsh/mpirun/srun.
struct Command {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;  // set on top of the runner's environment
  std::vector<std::string> unset_env;                    // removed from it
  std::string host;                                      // ssh runner: the host it reaches
  // Stopped with SIGINT, then SIGTERM 100 ms later, whatever stops the job (DeepSpeed's
  // runner does this to pdsh); otherwise it gets the signal the other processes get.
  bool interrupt_before_term = false;
};

// A file execute_plan writes before starting the commands (mvapich's host list).
struct PlannedFile {
  std::string path;
  std::string content;
};

struct LaunchPlan {
  Resources resources;  // active hosts and slots, in order
  std::string world_info;
  std::string master_addr;
  int master_port = 29500;
  bool multi_node = false;
  std::string launcher;  // "local" for a single-node run, else the multi-node backend
  // The job's identity in the rendezvous, given to every rank as DEEPSPEED_RUN_ID (it is
  // also in `exports`): ranks of two jobs on one master port never pair. From the
  // environment or .deepspeed_env when set there, else new; empty for a --no_ssh run without
  // one (each node's runner would make its own, and the nodes would never meet).
  std::string run_id;
  EnvList exports;       // carried to every node's ranks
  std::vector<RankEnvironment> ranks;  // empty for MPI/slurm backends (the MPI runtime assigns ranks)
  std::vector<Command> commands;
  // Run by execute_plan after the commands when the job ended by a signal or failed: stops
  // what may be left on the hosts (pdsh: DeepSpeed's pkill -f of the node launchers).
  std::optional<Command> cleanup;
  std::vector<PlannedFile> files;  // written by execute_plan before the commands
  std::vector<std::string> notes;  // said before running (warnings, decisions)
};

LaunchPlan plan_launch(const RunnerOptions& options, const SystemProbe& system);

// --dry_run output.
nlohmann::ordered_json plan_to_json(const LaunchPlan& plan, const RunnerOptions& options,
                                    const SystemProbe& system);

// Runs the plan: a single-node plan replaces this process by the node launcher (execve);
// multi-node plans write their files, run their commands under a ProcessSupervisor and, when
// that ends with a non-zero code (a signal to the runner gives 1), run the cleanup command.
// Returns the exit code of the commands.
int execute_plan(const LaunchPlan& plan, const RunnerOptions& options);

}  // namespace deepspeed::launcher
