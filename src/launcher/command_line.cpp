#include "launcher/command_line.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "deepspeed/errors.h"
#include "launcher/world_info.h"

namespace deepspeed::launcher {
namespace {

// DeepSpeed flags we recognise but do not implement, and why.
struct Unsupported {
  const char* flag;
  const char* why;
  bool takes_value;
};
constexpr Unsupported kUnsupported[] = {
    {"--autotuning", "the autotuner is not part of deepspeed-cpp", true},
    {"--elastic_training", "elastic training is not supported by deepspeed-cpp", false},
    {"--min_elastic_nodes", "elastic training is not supported by deepspeed-cpp", true},
    {"--max_elastic_nodes", "elastic training is not supported by deepspeed-cpp", true},
    {"--no_ssh_check_all", "not a deepspeed-cpp flag", false},
};

void take_program(CLI::App& app, std::string& program, std::vector<std::string>& args) {
  auto rest = app.remaining();
  if (rest.empty()) throw LaunchError("no program given (usage: deepspeed [flags] PROGRAM [ARGS...])");
  if (rest[0].size() > 1 && rest[0][0] == '-') {
    throw LaunchError(fmt::format("unrecognized flag '{}' (see deepspeed --help); the program comes "
                                  "after all deepspeed flags", rest[0]));
  }
  program = rest[0];
  args.assign(rest.begin() + 1, rest.end());
}

void add_unsupported(CLI::App& app, std::vector<std::pair<CLI::Option*, const Unsupported*>>& out) {
  for (const auto& u : kUnsupported) {
    CLI::Option* opt = u.takes_value ? app.add_option(u.flag)->group("") : app.add_flag(u.flag)->group("");
    out.emplace_back(opt, &u);
  }
}

void check_unsupported(const std::vector<std::pair<CLI::Option*, const Unsupported*>>& opts) {
  for (const auto& [opt, u] : opts)
    if (opt->count() > 0) throw LaunchError(fmt::format("{} is not supported: {}", u->flag, u->why));
}

CommandLine parse_runner(const std::vector<std::string>& args) {
  CommandLine cl;
  RunnerOptions& o = cl.runner;
  CLI::App app{"deepspeed: start PROGRAM once per slot on this machine or on the hosts of a hostfile", "deepspeed"};
  app.prefix_command();
  app.set_help_flag("-h,--help", "Print this help and exit");
  std::string log_level = "info";
  bool quiet = false;
  std::string launcher = o.launcher;
  app.add_option("-H,--hostfile", o.hostfile, "MPI-style hostfile (HOST slots=N lines)")->capture_default_str();
  app.add_option("-i,--include", o.include, "Hosts/slots to use, e.g. worker-2:0@worker-3:0,1");
  app.add_option("-e,--exclude", o.exclude, "Hosts/slots not to use, same grammar as --include");
  app.add_option("--num_nodes", o.num_nodes, "Use the first N hosts");
  app.add_option("--num_gpus,--num_accelerators", o.num_gpus, "Use slots [0, N) on every host");
  app.add_option("--master_addr", o.master_addr, "Address of rank 0 (default: 127.0.0.1 on one node, else ssh HOST hostname -I)");
  app.add_option("--master_port", o.master_port, "Port of rank 0's store")->capture_default_str()->check(CLI::Range(1, 65535));
  app.add_option("--node_rank", o.node_rank, "This node's index (only with --no_ssh)");
  app.add_option("--launcher", launcher, "Multi-node backend: pdsh, ssh, openmpi, mpich, impi, mvapich, slurm")->capture_default_str();
  app.add_option("--launcher_args", o.launcher_args, "Extra arguments for the backend, shell-split");
  app.add_flag("--module", o.module, "Run PROGRAM as a python module (python3 -u -m)");
  app.add_flag("--no_python", o.no_python, "Run a .py PROGRAM directly, not with python3");
  app.add_flag("--no_local_rank", o.no_local_rank, "Do not pass --local_rank=N to PROGRAM");
  app.add_flag("--no_ssh", o.no_ssh, "Launch only this node (needs --node_rank, --master_addr)");
  app.add_flag("--no_ssh_check", o.no_ssh_check, "Skip the ssh check of the first host");
  app.add_flag("--force_multi", o.force_multi, "Use the multi-node backend even for one host");
  app.add_flag("--save_pid", o.save_pid, "Write the launcher's pid to /tmp/<pid>.deepspeed");
  app.add_option("--enable_each_rank_log", o.enable_each_rank_log, "Directory for per-rank logs <YYYYmmddHHMMSS>_rank<R>.log");
  app.add_flag("--bind_cores_to_rank", o.bind_cores_to_rank, "Bind each rank to its share of the cores");
  app.add_option("--bind_core_list", o.bind_core_list, "Cores to share out, e.g. 0-7,16-23");
  app.add_option("--ssh_port", o.ssh_port, "ssh port for the ssh check, pdsh and the ssh runner");
  app.add_option("--venv_script", o.venv_script, "pdsh/ssh: script sourced on each node before the launch");
  app.add_option("--comment", o.comment, "slurm: passed to srun as --comment");
  app.add_option("--term_grace", o.term_grace_s, "Seconds between SIGTERM and SIGKILL when stopping ranks")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--log_level", log_level, "Launcher log level: debug, info, warning, error, critical")->capture_default_str();
  app.add_flag("-q,--quiet", quiet, "Same as --log_level=error");
  app.add_flag("--dry_run", o.dry_run, "Print the plan as JSON (resources, master, each rank's env, commands) and exit");
  std::vector<std::pair<CLI::Option*, const Unsupported*>> unsupported;
  add_unsupported(app, unsupported);
  app.footer("Everything after PROGRAM is passed to it unchanged.");

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    cl.mode = Mode::kHelp;
    cl.help_text = app.help();
    return cl;
  } catch (const CLI::ParseError& e) {
    throw LaunchError(e.what());
  }
  check_unsupported(unsupported);
  o.hostfile_given = app.count("--hostfile") > 0;
  o.log_level = quiet ? LogLevel::kError : parse_log_level(log_level);
  std::transform(launcher.begin(), launcher.end(), launcher.begin(), [](unsigned char c) { return std::tolower(c); });
  const auto& known = known_launchers();
  if (std::find(known.begin(), known.end(), launcher) == known.end())
    throw LaunchError(fmt::format("--launcher: Unknown launcher {} (expected one of pdsh, ssh, openmpi, mpich, impi, mvapich, slurm)", launcher));
  o.launcher = launcher;
  if (o.enable_each_rank_log == "None") o.enable_each_rank_log.clear();
  if (o.num_nodes == 0 && o.include.empty() && o.exclude.empty()) {
    // DeepSpeed treats 0 like "unset" except for the include/exclude conflict; keep that.
  }
  take_program(app, o.program, o.program_args);
  return cl;
}

CommandLine parse_launch(const std::vector<std::string>& args) {
  CommandLine cl;
  cl.mode = Mode::kLaunch;
  LocalLaunchOptions& o = cl.launch;
  CLI::App app{"deepspeed --launch: the node launcher (started by the deepspeed runner)", "deepspeed --launch"};
  app.prefix_command();
  std::string world_info, log_level = "info";
  double grace = 30;
  bool quiet = false;
  app.add_option("--world_info", world_info)->required();
  app.add_option("--node_rank", o.node_rank)->capture_default_str();
  app.add_option("--master_addr", o.master_addr)->capture_default_str();
  app.add_option("--master_port", o.master_port)->capture_default_str()->check(CLI::Range(1, 65535));
  app.add_flag("--module", o.module);
  app.add_flag("--no_python", o.no_python);
  app.add_flag("--no_local_rank", o.no_local_rank);
  app.add_option("--save_pid", o.save_pid);
  app.add_option("--enable_each_rank_log", o.each_rank_log_dir);
  app.add_flag("--bind_cores_to_rank", o.bind_cores_to_rank);
  app.add_option("--bind_core_list", o.bind_core_list);
  app.add_option("--term_grace", grace)->check(CLI::NonNegativeNumber);
  app.add_flag("--watch_stdin", o.watch_stdin);
  app.add_option("--log_level", log_level);
  app.add_flag("-q,--quiet", quiet);
  std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);  // drop "--launch"
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    cl.mode = Mode::kHelp;
    cl.help_text = app.help();
    return cl;
  } catch (const CLI::ParseError& e) {
    throw LaunchError(fmt::format("--launch: {}", e.what()));
  }
  if (o.each_rank_log_dir == "None") o.each_rank_log_dir.clear();
  o.world = decode_world_info(world_info);
  o.term_grace = std::chrono::milliseconds(static_cast<long>(grace * 1000));
  o.log_level = quiet ? LogLevel::kError : parse_log_level(log_level);
  take_program(app, o.program, o.program_args);
  return cl;
}

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "--launch") return parse_launch(args);
  if (!args.empty() && args[0].rfind("--mpi_helper", 0) == 0) {
    CommandLine cl;
    cl.mode = Mode::kMpiHelper;
    size_t next = 1;
    if (args[0].rfind("--mpi_helper=", 0) == 0) {
      cl.mpi_flavour = args[0].substr(std::strlen("--mpi_helper="));
    } else if (args.size() > 1) {
      cl.mpi_flavour = args[1];
      next = 2;
    }
    cl.program_argv.assign(args.begin() + static_cast<long>(std::min(next, args.size())), args.end());
    if (cl.program_argv.empty()) throw LaunchError("--mpi_helper: no program given");
    return cl;
  }
  return parse_runner(args);
}

std::vector<std::pair<std::string, std::string>> mpi_rank_environment(const std::string& flavour,
                                                                      const Environ& env) {
  auto first_of = [&](std::initializer_list<const char*> names, const char* what) {
    std::string value;
    for (const char* n : names) {
      auto it = env.find(n);
      if (it == env.end()) continue;
      if (!value.empty() && value != it->second)
        throw LaunchError(fmt::format("--mpi_helper={}: {} rank number doesn't match! ({}={} vs {})", flavour, what, n, it->second, value));
      value = it->second;
    }
    if (value.empty())
      throw LaunchError(fmt::format("--mpi_helper={}: {} rank number is not in current env!", flavour, what));
    return value;
  };
  if (flavour == "mpich") {
    return {{"RANK", first_of({"PMIX_RANK", "PMI_RANK"}, "global")},
            {"LOCAL_RANK", first_of({"PALS_LOCAL_RANKID", "MPI_LOCALRANKID"}, "local")}};
  }
  if (flavour == "openmpi") {
    return {{"RANK", first_of({"OMPI_COMM_WORLD_RANK"}, "global")},
            {"LOCAL_RANK", first_of({"OMPI_COMM_WORLD_LOCAL_RANK"}, "local")},
            {"WORLD_SIZE", first_of({"OMPI_COMM_WORLD_SIZE"}, "world size")}};
  }
  throw LaunchError(fmt::format("--mpi_helper: unknown MPI flavour '{}' (expected mpich or openmpi)", flavour));
}

void run_mpi_helper(const CommandLine& cl) {
  for (const auto& [k, v] : mpi_rank_environment(cl.mpi_flavour, current_environ())) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<std::string> storage = cl.program_argv;
  const bool is_py = storage[0].size() > 3 && storage[0].compare(storage[0].size() - 3, 3, ".py") == 0;
  if (is_py) storage.insert(storage.begin(), {"python3", "-u"});
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  ::execvp(storage[0].c_str(), argv.data());
  throw LaunchError(fmt::format("--mpi_helper: cannot execute '{}': {}", storage[0], std::strerror(errno)));
}

}  // namespace deepspeed::launcher
