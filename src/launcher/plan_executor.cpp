// execute_plan(): the part of the runner that starts things (launch_plan.h).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "deepspeed/errors.h"
#include "launcher/launch_plan.h"
#include "launcher/local_launcher.h"
#include "launcher/process_supervisor.h"
#include "launcher/runners/multinode_runner.h"
#include "launcher/shell_quote.h"

extern char** environ;

namespace deepspeed::launcher {
namespace {

ChildSpec child_of(const Command& c) {
  ChildSpec child;
  child.argv = c.argv;
  child.env = c.env;
  child.interrupt_before_term = c.interrupt_before_term;
  return child;
}

// The cleanup after a stopped or failed pdsh job: DeepSpeed's kill command. Its output
// (pkill finding nothing on a host is exit code 1, which pdsh reports) is only shown with
// --log_level debug; its exit code does not change the job's.
void run_cleanup(const Command& cleanup, std::chrono::milliseconds grace, const LauncherLog& log) {
  const std::string shell = shell_join(cleanup.argv);
  if (!program_in_path(cleanup.argv.at(0))) {
    log.error(fmt::format("cannot stop the node launchers left on the hosts: {} is not in PATH any more; run `{}` "
                          "yourself", cleanup.argv[0], shell));
    return;
  }
  log.info(fmt::format("stopping this job's node launchers on every host: {}", shell));
  ChildSpec child = child_of(cleanup);
  const bool debug = log.level() <= LogLevel::kDebug;
  if (!debug) child.log_file = "/dev/null";
  try {
    // Its "exits with return code" message would read as a failure; only shown when debugging.
    const LauncherLog quiet(debug ? log.level() : LogLevel::kCritical);
    const int rc = ProcessSupervisor({grace, false, quiet}).run({child});
    log.debug(fmt::format("kill command exit code {} (1: nothing left to stop on some host)", rc));
  } catch (const LaunchError& e) {
    log.error(fmt::format("the kill command failed: {}; run `{}` yourself", e.what(), shell));
  }
}

}  // namespace

int execute_plan(const LaunchPlan& plan, const RunnerOptions& o) {
  LauncherLog log(o.log_level);
  for (const auto& note : plan.notes) log.warning(note);

  if (!plan.multi_node) {
    // Become the node launcher: same pid (so --save_pid and signals address it directly),
    // and no extra process between the user and the ranks.
    const Command& c = plan.commands.at(0);
    // A missing program is reported here, before anything starts (and once, not per rank).
    const bool is_py = o.program.size() > 3 && o.program.compare(o.program.size() - 3, 3, ".py") == 0;
    if (!o.module && (o.no_python || !is_py)) resolve_program(o.program);
    for (const auto& k : c.unset_env) ::unsetenv(k.c_str());
    for (const auto& [k, v] : c.env) ::setenv(k.c_str(), v.c_str(), 1);
    log.info(fmt::format("running {} rank(s) on this node, master {}:{}{}", plan.ranks.size(), plan.master_addr,
                         plan.master_port, plan.run_id.empty() ? "" : ", run id " + plan.run_id));
    std::vector<std::string> storage = c.argv;
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(storage[0].c_str(), argv.data());
    throw LaunchError(fmt::format("cannot execute the node launcher '{}': {}", storage[0], std::strerror(errno)));
  }

  for (const auto& f : plan.files) {
    std::ofstream out(f.path, std::ios::trunc);
    out << f.content;
    out.close();
    if (!out) throw LaunchError(fmt::format("cannot write {}: {}", f.path, std::strerror(errno)));
  }
  std::vector<ChildSpec> children;
  for (const auto& c : plan.commands) {
    for (const auto& k : c.unset_env) ::unsetenv(k.c_str());
    ChildSpec child = child_of(c);
    if (!c.host.empty()) {
      child.output_prefix = c.host + ": ";
      child.stdin_hold_open = true;
    }
    children.push_back(std::move(child));
  }
  log.info(fmt::format("launching {} on {} host(s) with {}, master {}:{}{}", o.program, plan.resources.size(),
                       plan.launcher, plan.master_addr, plan.master_port,
                       plan.run_id.empty() ? "" : ", run id " + plan.run_id));
  for (const auto& c : plan.commands) log.debug(fmt::format("cmd = {}", fmt::join(c.argv, " ")));
  const std::chrono::milliseconds grace(static_cast<long>(o.term_grace_s * 1000));
  const int rc = ProcessSupervisor({grace, false, log}).run(children);
  if (rc != 0 && plan.cleanup) run_cleanup(*plan.cleanup, grace, log);
  return rc;
}

}  // namespace deepspeed::launcher
