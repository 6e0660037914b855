#include "processes.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace deepspeed::testing {
namespace {

// /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses,
// so the fields are counted from the last ')'.
struct ProcStat {
  char state = '?';
  pid_t pgrp = -1;
};

std::optional<ProcStat> read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  ProcStat s;
  pid_t ppid = 0;
  if (!(rest >> s.state >> ppid >> s.pgrp)) return std::nullopt;
  return s;
}

}  // namespace

pid_t spawn_background(const std::vector<std::string>& argv, const std::string& output_file,
                       const std::map<std::string, std::string>& env) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const int out = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int in = ::open("/dev/null", O_RDONLY);
  if (out < 0 || in < 0) ::_exit(126);
  ::dup2(in, STDIN_FILENO);
  ::dup2(out, STDOUT_FILENO);
  ::dup2(out, STDERR_FILENO);
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  std::perror("execv");
  ::_exit(127);
}

std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout) {
  std::optional<int> code;
  wait_until(
      [&] {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) != pid) return false;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      },
      timeout);
  return code;
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<pid_t> wait_for_pid_files(const std::string& dir, size_t count, std::chrono::milliseconds timeout) {
  std::vector<pid_t> pids;
  wait_until(
      [&] {
        pids.clear();
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
          if (e.path().extension() != ".pid") continue;
          pid_t p = 0;
          // A file being written may still be empty: counted on a later poll.
          if (std::ifstream(e.path()) >> p && p > 0) pids.push_back(p);
        }
        return pids.size() >= count;
      },
      timeout);
  return pids;
}

bool alive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  const auto s = read_stat(pid);
  return s && s->state != 'Z';
}

std::vector<pid_t> live_members_of_groups(const std::vector<pid_t>& pgids) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (const dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    const auto s = read_stat(static_cast<pid_t>(pid));
    if (!s || s->state == 'Z') continue;
    if (std::find(pgids.begin(), pgids.end(), s->pgrp) != pgids.end()) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  return out;
}

}  // namespace deepspeed::testing
