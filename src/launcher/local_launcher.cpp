#include "launcher/local_launcher.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <optional>
#include <filesystem>
#include <fstream>

#include "deepspeed/errors.h"
#include "launcher/core_binding.h"
#include "launcher/pod_env.h"
#include "launcher/rank_environment.h"

namespace deepspeed::launcher {
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string now_timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", &tm);
  return buf;
}

// Removes the --save_pid file however run_local_launch leaves.
class PidFile {
 public:
  explicit PidFile(int key) {
    if (key < 0) return;
    path_ = fmt::format("/tmp/{}.deepspeed", key);
    std::ofstream(path_) << ::getpid();
  }
  ~PidFile() {
    if (!path_.empty()) std::filesystem::remove(path_);
  }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  std::string path_;
};

}  // namespace

bool program_in_path(const std::string& name) {
  try {
    resolve_program(name);
    return true;
  } catch (const LaunchError&) {
    return false;
  }
}

std::vector<ChildSpec> build_rank_children(const LocalLaunchOptions& o, const CoreBinder& binder,
                                           const std::string& timestamp) {
  if (o.module && o.no_python)
    throw LaunchError("--no_python and --module are mutually exclusive (a module needs python)");
  if (o.program.empty()) throw LaunchError("no program given");
  const auto ranks = node_rank_environments(o.world, o.node_rank, o.master_addr, o.master_port);
  const int world_size = total_slots(o.world);

  std::vector<std::vector<int>> cores;
  if (o.bind_cores_to_rank) {
    if (std::getenv("KMP_AFFINITY"))
      throw LaunchError("--bind_cores_to_rank: KMP_AFFINITY is set and would override the binding; unset it");
    const auto list = o.bind_core_list.empty() ? default_core_list() : parse_core_list(o.bind_core_list);
    cores = assign_cores(list, static_cast<int>(ranks.size()));
  }

  std::vector<ChildSpec> out;
  for (size_t i = 0; i < ranks.size(); ++i) {
    const auto& r = ranks[i];
    ChildSpec c;
    if (!cores.empty() && binder.numactl) {
      c.argv = numactl_command(binder.numa, cores[i]);
    } else if (!cores.empty()) {
      c.cpu_affinity = cores[i];
    }
    if (o.module) {
      c.argv.insert(c.argv.end(), {"python3", "-u", "-m"});
    } else if (!o.no_python && ends_with(o.program, ".py")) {
      c.argv.insert(c.argv.end(), {"python3", "-u"});
    }
    c.argv.push_back(o.program);
    if (!o.no_local_rank) c.argv.push_back(fmt::format("--local_rank={}", r.local_rank));
    c.argv.insert(c.argv.end(), o.program_args.begin(), o.program_args.end());
    for (const auto& [k, v] : r.env) c.env.emplace_back(k, v);
    c.env.insert(c.env.end(), o.node_env.begin(), o.node_env.end());
    if (!cores.empty()) c.env.emplace_back("OMP_NUM_THREADS", std::to_string(cores[i].size()));
    if (!o.each_rank_log_dir.empty()) {
      c.log_file = (std::filesystem::path(o.each_rank_log_dir) / fmt::format("{}_rank{}.log", timestamp, r.rank)).string();
    } else if (world_size > 1) {
      c.output_prefix = fmt::format("[rank{}]: ", r.rank);
    }
    c.stdin_null = o.watch_stdin;
    out.push_back(std::move(c));
  }
  return out;
}

CoreBinder choose_core_binder(const LocalLaunchOptions& o, std::vector<BindingNote>& notes) {
  CoreBinder binder;
  if (!o.bind_cores_to_rank) return binder;
  if (!program_in_path("numactl")) {
    notes.push_back({LogLevel::kInfo, "numactl not found; binding ranks to cores with sched_setaffinity (no memory binding)"});
    return binder;
  }
  binder.numactl = true;
  binder.numa = read_numa_topology();
  // The numactl words of each rank's command: everything up to the core list after -C.
  auto numactl_parts = [&](const CoreBinder& b) {
    std::vector<std::vector<std::string>> parts;
    for (const auto& child : build_rank_children(o, b, "probe")) {
      auto c = std::find(child.argv.begin(), child.argv.end(), "-C");
      if (c != child.argv.end() && c + 1 != child.argv.end()) parts.emplace_back(child.argv.begin(), c + 2);
    }
    return parts;
  };
  // First failure among the ranks' numactl commands: {command, message}, or nothing.
  auto first_failure = [&](const CoreBinder& b) -> std::optional<std::pair<std::string, std::string>> {
    for (const auto& part : numactl_parts(b))
      if (auto err = numactl_error(part)) return std::make_pair(fmt::format("{}", fmt::join(part, " ")), *err);
    return std::nullopt;
  };
  auto failure = first_failure(binder);
  if (!failure) {
    notes.push_back({LogLevel::kInfo, binder.numa.empty()
                                          ? "binding ranks to cores with numactl -C (no NUMA information)"
                                          : "binding ranks to cores with numactl (and to the memory of their NUMA node)"});
    return binder;
  }
  if (!is_numa_permission_error(failure->second))
    throw LaunchError(fmt::format("--bind_cores_to_rank: '{}' failed: {}", failure->first, failure->second));
  CoreBinder cpus_only{true, {}};
  auto cpu_failure = first_failure(cpus_only);
  if (!cpu_failure) {
    notes.push_back({LogLevel::kWarning,
                     fmt::format("'{}' failed ({}); binding ranks to cores with numactl -C, without NUMA memory binding",
                                 failure->first, failure->second)});
    return cpus_only;
  }
  if (!is_numa_permission_error(cpu_failure->second))
    throw LaunchError(fmt::format("--bind_cores_to_rank: '{}' failed: {}", cpu_failure->first, cpu_failure->second));
  notes.push_back({LogLevel::kWarning, fmt::format("'{}' failed ({}); binding ranks to cores with sched_setaffinity",
                                                   cpu_failure->first, cpu_failure->second)});
  return CoreBinder{};
}

int run_local_launch(const LocalLaunchOptions& options) {
  LauncherLog log(options.log_level);
  LocalLaunchOptions o = options;
  auto pod_env = read_pod_env();
  o.node_env.insert(o.node_env.end(), pod_env.begin(), pod_env.end());
  std::vector<BindingNote> binding_notes;
  const CoreBinder binder = choose_core_binder(o, binding_notes);
  auto children = build_rank_children(o, binder, now_timestamp());
  // A missing program is reported once, before anything starts.
  std::string program = o.program;
  if (!o.module && (o.no_python || !ends_with(program, ".py"))) {
    resolve_program(program);
  } else if (!o.module) {
    if (!std::filesystem::is_regular_file(program))
      throw LaunchError(fmt::format("python script '{}' not found", program));
  }
  for (const auto& [level, note] : binding_notes) {
    if (level == LogLevel::kWarning) {
      log.warning(note);
    } else {
      log.info(note);
    }
  }
  if (!o.each_rank_log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.each_rank_log_dir, ec);
    if (ec) throw LaunchError(fmt::format("--enable_each_rank_log: cannot create '{}': {}", o.each_rank_log_dir, ec.message()));
  }
  PidFile pid_file(o.save_pid);
  for (const auto& c : children) {
    log.debug(fmt::format("rank command: {}", fmt::join(c.argv, " ")));
  }
  ProcessSupervisor supervisor({o.term_grace, o.watch_stdin, log});
  return supervisor.run(children);
}

}  // namespace deepspeed::launcher
