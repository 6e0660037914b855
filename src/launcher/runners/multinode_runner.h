// Command builders of the multi-node backends (docs/launcher.md, "Multi-node"). Each takes
// what the runner
// resolved and returns the command(s) it would run; none runs anything.
//   pdsh     one pdsh for all hosts; each host runs the node launcher with --node_rank=%n;
//            plus the kill command (pkill -f of those node launchers, through pdsh) that the
//            runner runs when the job is stopped or fails
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
#include "launcher/numa_binding.h"
#include "launcher/resources.h"
#include "launcher/runner_options.h"
#include "launcher/system_probe.h"

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
  Environ environ;                 // the runner's environment (PDSH_SSH_ARGS_APPEND, DS_ACCELERATOR)
  NumaTopology numa;               // the runner machine's, for impi's per-rank numactl (as DeepSpeed)
  std::vector<int> default_cores;  // impi --bind_cores_to_rank without --bind_core_list
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
// DeepSpeed's PDSHRunner kill command: the same pdsh invocation running `pkill -f PATTERN` on
// every host, PATTERN matching this job's node launchers (pdsh_kill_pattern).
Command pdsh_kill_command(const MultiNodeContext& ctx);
// An extended regex for `pkill -f` that matches the command line of this job's node launchers
// (`<self_exe> --launch --world_info=<b64> --node_rank=<n> --master_addr=<a> --master_port=<p> `)
// and not the remote shell running pkill itself (its first character is bracketed, the
// `grep [f]oo` trick). DeepSpeed's pattern, `python -u -m deepspeed.launcher.launc`, matches
// every DeepSpeed job of the user on the host; this one only the job the runner started.
std::string pdsh_kill_pattern(const MultiNodeContext& ctx);
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

// DeepSpeed's backend_exists(): the probe program is in PATH and, for mvapich, `mpiname`
// reports MVAPICH2-GDR. LaunchError "launcher 'X' not installed ..." saying what is missing.
void check_backend_installed(const std::string& launcher, const SystemProbe& system);

// The MV2_* variables DeepSpeed's MVAPICHRunner exports, in its order. MV2_USE_CUDA=1 only
// for CUDA (DeepSpeed: when the accelerator is cuda): left out when DS_ACCELERATOR in
// `environ` names another accelerator.
EnvList mvapich_default_exports(const Environ& environ);

// Where mvapich's host list goes, as DeepSpeed, and what it holds: the hostfile's hosts, one
// per line.
inline constexpr const char* kMvapichHostfile = "/tmp/deepspeed_mvapich_hostfile";
std::string mvapich_hostfile_content(const MultiNodeContext& ctx);

}  // namespace deepspeed::launcher
