#include "launcher/flag_checks.h"

#include <fmt/format.h>

#include "deepspeed/errors.h"

namespace deepspeed::launcher {

std::vector<std::string> check_flag_use(const RunnerOptions& o, bool multi_node) {
  if (o.node_rank >= 0 && !o.no_ssh)
    throw LaunchError(fmt::format("--node_rank={} is only used with --no_ssh (otherwise the runner numbers the nodes "
                                  "itself)", o.node_rank));
  if (!o.bind_core_list.empty() && !o.bind_cores_to_rank)
    throw LaunchError("--bind_core_list is only used with --bind_cores_to_rank (DeepSpeed ignores the list without it)");
  if (!o.comment.empty() && !(multi_node && o.launcher == "slurm"))
    throw LaunchError(fmt::format("--comment is only passed to srun, for a multi-node --launcher=slurm run (this run: {})",
                                  multi_node ? "--launcher=" + o.launcher : std::string("single-node")));

  std::vector<std::string> notes;
  if (!multi_node) {
    // Flags for starting processes on other hosts: a single-node run starts none.
    auto unused = [&](const char* flag) {
      notes.push_back(fmt::format("{} is not used: this is a single-node run (no remote launch)", flag));
    };
    if (!o.launcher_args.empty()) unused("--launcher_args");
    if (!o.venv_script.empty()) unused("--venv_script");
    if (o.ssh_port > 0) unused("--ssh_port");
    if (o.force_multi && o.no_ssh) notes.push_back("--force_multi is not used with --no_ssh (this node only)");
    return notes;
  }
  if (o.launcher == "pdsh" || o.launcher == "ssh") return notes;

  // mpirun/srun start the ranks themselves: no node launcher runs on the hosts.
  const std::string backend = o.launcher == "slurm" ? "srun" : "mpirun";
  auto refuse = [&](const std::string& flag, const std::string& why) {
    throw LaunchError(fmt::format("{} is not supported with --launcher={}: {}", flag, o.launcher, why));
  };
  if (o.save_pid) refuse("--save_pid", backend + " starts the ranks; no node launcher runs to write the pid file");
  if (!o.enable_each_rank_log.empty())
    refuse("--enable_each_rank_log", backend + " starts the ranks and owns their output (give its own option in "
                                               "--launcher_args, e.g. mpirun --output-filename DIR)");
  if (o.bind_cores_to_rank && o.launcher != "impi")
    refuse("--bind_cores_to_rank", "only the local, pdsh, ssh and impi launches bind ranks to cores (as DeepSpeed)");
  if (!o.venv_script.empty()) refuse("--venv_script", "it is sourced by the pdsh and ssh launches only");
  if (o.ssh_port > 0)
    refuse("--ssh_port", fmt::format("{} makes its own connections (give its option in --launcher_args{})", backend,
                                     o.launcher == "openmpi" ? ", e.g. --mca plm_rsh_args '-p 2222'" : ""));
  return notes;
}

}  // namespace deepspeed::launcher
