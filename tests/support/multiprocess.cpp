#include "multiprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace deepspeed::testing {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "dscpp-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

// Not std::filesystem::remove_all: a PyTorch 2.x wheel's libtorch.so exports its own copy of
// it, which the dynamic linker may bind first and which crashes when called from outside.
TempDir::~TempDir() {
  ::nftw(
      path_.c_str(),
      [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<RankResult> run_ranks(int world_size, const std::string& program,
                                  const std::vector<std::string>& args, const RunOptions& options) {
  TempDir logs;
  const int port = free_port();
  std::vector<pid_t> pids(world_size, -1);
  std::vector<RankResult> results(world_size);
  for (int r = 0; r < world_size; ++r) {
    results[r].rank = r;
    const std::string log = logs.file("rank" + std::to_string(r) + ".log");
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world_size).c_str(), 1);
      ::setenv("LOCAL_SIZE", std::to_string(world_size).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("OMP_NUM_THREADS", "1", 0);
      for (const auto& [k, v] : options.env) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(program.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(program.c_str(), argv.data());
      std::perror("execv");
      ::_exit(127);
    }
    pids[r] = pid;
  }
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  int running = world_size;
  while (running > 0) {
    bool progressed = false;
    for (int r = 0; r < world_size; ++r) {
      if (pids[r] < 0) continue;
      int status = 0;
      pid_t done = ::waitpid(pids[r], &status, WNOHANG);
      if (done == pids[r]) {
        results[r].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pids[r] = -1;
        --running;
        progressed = true;
        // As the launcher does: once a rank has failed, the others get a short grace period
        // (to report their own errors), not the whole timeout waiting for a peer that is gone.
        if (results[r].exit_code != 0) {
          const auto grace = std::chrono::steady_clock::now() + options.failure_grace;
          if (grace < deadline) deadline = grace;
        }
      }
    }
    if (running == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (int r = 0; r < world_size; ++r) {
        if (pids[r] < 0) continue;
        results[r].timed_out = true;
        ::kill(-pids[r], SIGKILL);
        ::waitpid(pids[r], nullptr, 0);
        results[r].exit_code = -1;
        pids[r] = -1;
      }
      break;
    }
    if (!progressed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int r = 0; r < world_size; ++r) {
    results[r].output = read_file(logs.file("rank" + std::to_string(r) + ".log"));
  }
  return results;
}

}  // namespace deepspeed::testing
