// execute_plan(): the part of the runner that starts things (launch_plan.h).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "deepspeed/errors.h"
#include "launcher/launch_plan.h"
#include "launcher/process_supervisor.h"
#include "launcher/runners/multinode_runner.h"

extern char** environ;

namespace deepspeed::launcher {

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
    log.info(fmt::format("running {} rank(s) on this node, master {}:{}", plan.ranks.size(), plan.master_addr,
                         plan.master_port));
    std::vector<std::string> storage = c.argv;
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(storage[0].c_str(), argv.data());
    throw LaunchError(fmt::format("cannot execute the node launcher '{}': {}", storage[0], std::strerror(errno)));
  }

  for (const auto& f : plan.files) {
    if (f == kMvapichHostfile) {
      std::ofstream out(f);
      for (const auto& h : plan.resources) out << h.host << "\n";
      if (!out) throw LaunchError(fmt::format("cannot write {}", f));
    }
  }
  std::vector<ChildSpec> children;
  for (const auto& c : plan.commands) {
    for (const auto& k : c.unset_env) ::unsetenv(k.c_str());
    ChildSpec child;
    child.argv = c.argv;
    child.env = c.env;
    if (!c.host.empty()) {
      child.output_prefix = c.host + ": ";
      child.stdin_hold_open = true;
    }
    children.push_back(std::move(child));
  }
  log.info(fmt::format("launching {} on {} host(s) with {}, master {}:{}", o.program, plan.resources.size(),
                       plan.launcher, plan.master_addr, plan.master_port));
  for (const auto& c : plan.commands) log.debug(fmt::format("cmd = {}", fmt::join(c.argv, " ")));
  ProcessSupervisor supervisor({std::chrono::milliseconds(static_cast<long>(o.term_grace_s * 1000)), false, log});
  return supervisor.run(children);
}

}  // namespace deepspeed::launcher
