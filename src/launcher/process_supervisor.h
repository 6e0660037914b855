// Runs a set of child processes as one job and makes sure none outlives it.
//
// Promises:
// - every child runs in its own process group (so its own children are signalled with it)
//   and has PR_SET_PDEATHSIG=SIGKILL, so even a SIGKILLed launcher leaves no child behind;
// - the first child to exit non-zero (or by a signal) stops the job: the others get SIGTERM,
//   then SIGKILL after `term_grace`; run() returns that child's code (128+N for signal N);
//   a child with interrupt_before_term gets SIGINT and, 100 ms later, SIGTERM instead;
// - SIGINT/SIGTERM/SIGHUP to the launcher are forwarded to every child (a second one sends
//   SIGKILL at once); run() then returns 1, as DeepSpeed's launch.py;
// - with watch_stdin, end-of-file on the launcher's stdin counts as SIGTERM: a remote
//   launcher started by the ssh runner stops its ranks when the ssh connection goes away;
// - when a child exits, whatever is left of its process group is SIGKILLed;
// - output: a child with an output_prefix has its stdout and stderr read through pipes and
//   written line by line, each line prefixed, to the launcher's stdout/stderr; a child with
//   a log_file writes both there; otherwise it shares the launcher's.
// A program that cannot be executed is a LaunchError (the others are stopped first).
// Not thread-safe; one run() at a time per process (it owns SIGINT/SIGTERM/SIGHUP/SIGCHLD
// handlers while it runs and restores the previous ones after).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "launcher/launcher_log.h"

namespace deepspeed::launcher {

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in PATH
  std::vector<std::pair<std::string, std::string>> env;  // set on top of the inherited environment
  std::string output_prefix;      // e.g. "[rank1]: "; empty = no prefixing
  std::string log_file;           // non-empty: stdout+stderr appended to this file
  std::vector<int> cpu_affinity;  // non-empty: sched_setaffinity before exec
  bool stdin_null = false;        // stdin from /dev/null instead of the launcher's
  // stdin from a pipe the supervisor holds open and never writes: the child sees EOF only
  // when the supervisor is gone (how ssh tells a remote launcher that the runner died).
  bool stdin_hold_open = false;
  // Stopped with SIGINT, then SIGTERM 100 ms later, instead of the signal the job is stopped
  // with (pdsh: SIGINT makes it report the hosts still running, SIGTERM ends it).
  bool interrupt_before_term = false;
};

struct SupervisorOptions {
  std::chrono::milliseconds term_grace{30000};
  bool watch_stdin = false;
  LauncherLog log;
};

class ProcessSupervisor {
 public:
  explicit ProcessSupervisor(SupervisorOptions options) : options_(std::move(options)) {}
  // Starts the children and waits for all of them; see the promises above.
  int run(const std::vector<ChildSpec>& children);

 private:
  SupervisorOptions options_;
};

// The path execve would run for argv0 (PATH lookup when it has no '/'), or a LaunchError
// saying the program is missing or not executable.
std::string resolve_program(const std::string& argv0);

}  // namespace deepspeed::launcher
