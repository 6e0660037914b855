#include <fmt/format.h>

#include "deepspeed/errors.h"
#include "launcher/runners/multinode_runner.h"
#include "launcher/shell_quote.h"

namespace deepspeed::launcher {

std::vector<std::string> node_launcher_argv(const RunnerOptions& o, const std::string& self_exe,
                                            const std::string& world_info, const std::string& node_rank,
                                            const std::string& master_addr, int master_port,
                                            int runner_pid, bool watch_stdin) {
  std::vector<std::string> argv = {self_exe, "--launch", "--world_info=" + world_info,
                                   "--node_rank=" + node_rank, "--master_addr=" + master_addr,
                                   fmt::format("--master_port={}", master_port)};
  if (o.no_python) argv.push_back("--no_python");
  if (o.module) argv.push_back("--module");
  if (o.no_local_rank) argv.push_back("--no_local_rank");
  if (o.save_pid) argv.push_back(fmt::format("--save_pid={}", runner_pid));
  if (!o.enable_each_rank_log.empty()) argv.push_back("--enable_each_rank_log=" + o.enable_each_rank_log);
  if (o.bind_cores_to_rank) argv.push_back("--bind_cores_to_rank");
  if (!o.bind_core_list.empty()) argv.push_back("--bind_core_list=" + o.bind_core_list);
  argv.push_back(fmt::format("--term_grace={}", o.term_grace_s));
  if (watch_stdin) argv.push_back("--watch_stdin");
  argv.push_back(fmt::format("--log_level={}", log_level_name(o.log_level)));
  argv.push_back(o.program);
  argv.insert(argv.end(), o.program_args.begin(), o.program_args.end());
  return argv;
}

std::string remote_shell_prefix(const MultiNodeContext& ctx) {
  std::string out;
  for (const auto& [k, v] : ctx.exports.items()) out += fmt::format("export {}={}; ", k, shell_quote(v));
  out += fmt::format("cd {}; ", shell_quote(ctx.cwd));
  if (!ctx.options.venv_script.empty()) out += fmt::format("source {}; ", shell_quote(ctx.options.venv_script));
  return out;
}

std::vector<std::string> mpi_program_argv(const RunnerOptions& o) {
  std::vector<std::string> argv;
  const bool is_py = o.program.size() > 3 && o.program.compare(o.program.size() - 3, 3, ".py") == 0;
  if (o.module) {
    argv = {"python3", "-u", "-m"};
  } else if (is_py && !o.no_python) {
    argv = {"python3", "-u"};
  }
  argv.push_back(o.program);
  argv.insert(argv.end(), o.program_args.begin(), o.program_args.end());
  return argv;
}

std::vector<Command> multinode_commands(const MultiNodeContext& ctx) {
  const auto& l = ctx.options.launcher;
  if (l == "pdsh") return pdsh_commands(ctx);
  if (l == "ssh") return ssh_commands(ctx);
  if (l == "openmpi") return openmpi_commands(ctx);
  if (l == "mpich") return mpich_commands(ctx);
  if (l == "impi") return impi_commands(ctx);
  if (l == "mvapich") return mvapich_commands(ctx);
  if (l == "slurm") return slurm_commands(ctx);
  throw LaunchError(fmt::format("--launcher: Unknown launcher {}", l));
}

}  // namespace deepspeed::launcher
