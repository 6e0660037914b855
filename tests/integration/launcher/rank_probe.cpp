// A rank program for the launcher's integration tests. Flags (any order, after the
// launcher's --local_rank=N, which it echoes):
//   --env NAME...        print NAME=<value> for each listed variable (<unset> if unset)
//   --pid-dir DIR        write DIR/rank<RANK>.pid (so a test can check that it is gone)
//   --exit-rank R --exit-code C   rank R exits with C (after --delay-ms)
//   --sleep-ms N         then sleep N ms before exiting 0
//   --ignore-term        ignore SIGTERM (the launcher must SIGKILL it)
//   --delay-ms N         wait before the exit-rank's exit
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  const char* rank_env = std::getenv("RANK");
  const std::string rank = rank_env ? rank_env : "?";
  std::vector<std::string> env_names;
  std::string pid_dir;
  int exit_rank = -1, exit_code = 0, sleep_ms = 0, delay_ms = 0;
  bool ignore_term = false;
  std::string args_seen;
  for (int i = 1; i < argc; ++i) args_seen += std::string(i > 1 ? " " : "") + argv[i];
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--env") {
      while (i + 1 < argc && argv[i + 1][0] != '-') env_names.push_back(argv[++i]);
    } else if (a == "--pid-dir") {
      pid_dir = next();
    } else if (a == "--exit-rank") {
      exit_rank = std::atoi(next().c_str());
    } else if (a == "--exit-code") {
      exit_code = std::atoi(next().c_str());
    } else if (a == "--sleep-ms") {
      sleep_ms = std::atoi(next().c_str());
    } else if (a == "--delay-ms") {
      delay_ms = std::atoi(next().c_str());
    } else if (a == "--ignore-term") {
      ignore_term = true;
    }
  }
  if (ignore_term) signal(SIGTERM, SIG_IGN);
  std::printf("ARGS %s\n", args_seen.c_str());
  for (const auto& n : env_names) {
    const char* v = std::getenv(n.c_str());
    std::printf("%s=%s\n", n.c_str(), v ? v : "<unset>");
  }
  std::fflush(stdout);
  if (!pid_dir.empty()) {
    std::ofstream(pid_dir + "/rank" + rank + ".pid") << getpid() << "\n";
  }
  if (exit_rank >= 0 && rank == std::to_string(exit_rank)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    std::fprintf(stderr, "rank %s exiting with %d\n", rank.c_str(), exit_code);
    return exit_code;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  return 0;
}
