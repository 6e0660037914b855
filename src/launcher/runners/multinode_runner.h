// Command builders of the multi-node backends (spec §7.7). Each takes what the runner
// resolved and returns the command(s) it would run; none runs anything.
//   pdsh     one pdsh for all hosts; each host runs the node launcher with --node_rank=%n
//   ssh      one ssh per host, in parallel (ours, for machines without pdsh)
//   openmpi  mpirun starts every rank; ranks read OMPI_COMM_WORLD_*
//   mpich    mpirun + `deepspeed --mpi_helper=mpich` mapping PMI_RANK etc. to RANK/LOCAL_RANK
//   impi     mpirun with one -env RANK/LOCAL_RANK section per rank
//   mvapich  mpirun --hostfile /tmp/deepspeed_mvapich_hostfile
//   slurm    srun; ranks read SLURM_PROCID etc.
#pragma once

#include <string>
#include <vector>

#include "launcher/environment_exports.h"
#include "launcher/launch_plan.h"
#include "launcher/resources.h"
#include "launcher/runner_options.h"

namespace deepspeed::launcher {

struct MultiNodeContext {
  const RunnerOptions& options;
  HostPool pool;       // the whole hostfile (MPI backends size the job from it)
  Resources active;    // after include/exclude/num_nodes/num_gpus
  EnvList exports;
  std::string world_info;
  std::string master_addr;
  int master_port = 29500;
  std::string cwd;
  std::string self_exe;
  int runner_pid = 0;
};

// The node launcher's command line (`deepspeed --launch ...`), for node_rank given as text
// ("%n" for pdsh). Shared by the single-node path, pdsh and ssh.
std::vector<std::string> node_launcher_argv(const RunnerOptions& options, const std::string& self_exe,
                                            const std::string& world_info, const std::string& node_rank,
                                            const std::string& master_addr, int master_port,
                                            int runner_pid, bool watch_stdin);

// `export K=V; ...; cd <cwd>; ` with values shell-quoted (the prefix of pdsh/ssh commands).
std::string remote_shell_prefix(const MultiNodeContext& ctx);

// The program part of an MPI-started rank: [python3 -u [-m]] PROGRAM ARGS.
std::vector<std::string> mpi_program_argv(const RunnerOptions& options);

std::vector<Command> pdsh_commands(const MultiNodeContext& ctx);
std::vector<Command> ssh_commands(const MultiNodeContext& ctx);
std::vector<Command> openmpi_commands(const MultiNodeContext& ctx);
std::vector<Command> mpich_commands(const MultiNodeContext& ctx);
std::vector<Command> impi_commands(const MultiNodeContext& ctx);
std::vector<Command> mvapich_commands(const MultiNodeContext& ctx);
std::vector<Command> slurm_commands(const MultiNodeContext& ctx);

// Dispatches on ctx.options.launcher; LaunchError "Unknown launcher X" otherwise.
std::vector<Command> multinode_commands(const MultiNodeContext& ctx);

// The program whose presence says the backend is installed (pdsh, ssh, ompi_info, mpirun,
// mpiname, sinfo).
std::string backend_probe_program(const std::string& launcher);

// Where mvapich's host list goes, as DeepSpeed.
inline constexpr const char* kMvapichHostfile = "/tmp/deepspeed_mvapich_hostfile";

}  // namespace deepspeed::launcher
