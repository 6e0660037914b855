#include "multiprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace deepspeed::testing {

namespace {

bool can_bind(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// The first port the kernel hands out for bind(0) and outgoing connections.
int ephemeral_low() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (in >> low && low > 2048) return low;
  return 32768;
}

}  // namespace

// Below the ephemeral range: a port the kernel gave us for bind(0) is free only until we close
// it, and under `ctest -j` another test's connections or NCCL's own sockets (all ephemeral) can
// take it before rank 0 listens on it (EADDRINUSE, seen on GPU runs). Ports below that range are
// handed out by nobody but programs that ask for them, so a random one that binds now stays ours.
int free_port() {
  const int low = 10000, high = ephemeral_low();
  std::mt19937 rng(static_cast<unsigned>(::getpid()) * 2654435761u ^
                   static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<int> pick(low, high - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    if (can_bind(port)) return port;
  }
  throw std::runtime_error("free_port: no free port in [" + std::to_string(low) + ", " +
                           std::to_string(high) + ")");
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
      const int local_size = options.local_size > 0 ? options.local_size : world_size;
      ::setenv("LOCAL_RANK", std::to_string(r % local_size).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world_size).c_str(), 1);
      ::setenv("LOCAL_SIZE", std::to_string(local_size).c_str(), 1);
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
