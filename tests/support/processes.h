// Watching real processes from a test: start a program in the background, wait for it with
// a deadline, find the pids its ranks wrote, and check with /proc that nothing is left
// behind. For fault tests that kill, interrupt or starve a job and then check how it ended.
// Waits poll (a loaded 2-core CI machine makes fixed sleeps either flaky or slow).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace deepspeed::testing {

// Starts argv[0] (a path) with its stdout and stderr appended to `output_file` and stdin from
// /dev/null, with `env` added to this process's environment. Returns the child's pid.
pid_t spawn_background(const std::vector<std::string>& argv, const std::string& output_file,
                       const std::map<std::string, std::string>& env = {});

// Waits for a child of this process; its exit code (128+N when killed by signal N), or
// nothing when it still runs after `timeout` (it is left running).
std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout);

// Polls `done` every 20 ms until it is true (returns true) or `timeout` passes (false).
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

// The pids in <dir>/*.pid files, once there are `count` of them (fewer after `timeout`).
std::vector<pid_t> wait_for_pid_files(const std::string& dir, size_t count, std::chrono::milliseconds timeout);

// A process that exists and is not a zombie.
bool alive(pid_t pid);

// Live processes (not zombies) whose process group is one of `pgids`: what a rank (each
// launched in its own group) may have left behind.
std::vector<pid_t> live_members_of_groups(const std::vector<pid_t>& pgids);

}  // namespace deepspeed::testing
