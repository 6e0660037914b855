#include "launcher/system_probe.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <random>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "launcher/core_binding.h"
#include "launcher/local_launcher.h"
#include "launcher/process_supervisor.h"

namespace deepspeed::launcher {

int run_and_capture(const std::vector<std::string>& argv, std::string& output, bool include_stderr) {
  output.clear();
  std::string path;
  try {
    path = resolve_program(argv.at(0));
  } catch (const std::exception&) {
    return -1;
  }
  std::vector<std::string> storage = argv;
  std::vector<char*> args;
  for (auto& s : storage) args.push_back(s.data());
  args.push_back(nullptr);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(p[1], STDOUT_FILENO);
    ::dup2(include_stderr ? p[1] : null_fd, STDERR_FILENO);
    ::execv(path.c_str(), args.data());
    ::_exit(127);
  }
  ::close(p[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Environ RealSystemProbe::environ() const { return current_environ(); }

std::string RealSystemProbe::cwd() const { return std::filesystem::current_path().string(); }

std::string RealSystemProbe::home() const {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  if (const passwd* pw = ::getpwuid(::getuid())) return pw->pw_dir;
  return {};
}

std::string RealSystemProbe::self_exe() const {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("deepspeed") : p.string();
}

int RealSystemProbe::runner_pid() const { return static_cast<int>(::getpid()); }

int RealSystemProbe::local_gpu_count() const {
  static const std::regex kNvidiaDevice("nvidia[0-9]+");
  int count = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev", ec))
    if (std::regex_match(e.path().filename().string(), kNvidiaDevice)) ++count;
  if (count > 0) return count;
  std::string out;
  if (run_and_capture({"nvidia-smi", "-L"}, out) != 0) return 0;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind("GPU ", 0) == 0) ++count;
  return count;
}

bool RealSystemProbe::have_program(const std::string& name) const { return program_in_path(name); }

int RealSystemProbe::run_program(const std::vector<std::string>& argv, std::string& output) const {
  return run_and_capture(argv, output);
}

NumaTopology RealSystemProbe::numa_topology() const { return read_numa_topology(); }

std::vector<int> RealSystemProbe::default_cores() const { return default_core_list(); }

namespace {
std::vector<std::string> ssh_argv(const std::string& host, int port, const std::vector<std::string>& ssh_args) {
  std::vector<std::string> argv = {"ssh", "-o", "PasswordAuthentication=no"};
  if (port > 0) argv.insert(argv.end(), {"-p", std::to_string(port)});
  argv.insert(argv.end(), ssh_args.begin(), ssh_args.end());
  argv.push_back(host);
  return argv;
}
}  // namespace

bool RealSystemProbe::ssh_reachable(const std::string& host, int port, const std::vector<std::string>& ssh_args) const {
  auto argv = ssh_argv(host, port, ssh_args);
  argv.push_back("hostname");
  std::string out;
  return run_and_capture(argv, out) == 0;
}

std::string RealSystemProbe::ssh_first_address(const std::string& host, int port, const std::vector<std::string>& ssh_args) const {
  auto argv = ssh_argv(host, port, ssh_args);
  argv.insert(argv.end(), {"hostname", "-I"});
  std::string out;
  if (run_and_capture(argv, out) != 0) return {};
  std::istringstream words(out);
  std::string first;
  words >> first;
  return first;
}

std::string RealSystemProbe::new_run_id() const {
  std::random_device random;  // the kernel's entropy: two runners started at once still differ
  const uint64_t high = random(), low = random();
  return fmt::format("{:016x}", (high << 32) ^ low);
}

}  // namespace deepspeed::launcher
