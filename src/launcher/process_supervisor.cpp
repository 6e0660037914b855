#include "launcher/process_supervisor.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>

#include "deepspeed/errors.h"
#include "launcher/shell_quote.h"

extern char** environ;

namespace deepspeed::launcher {
namespace {

// Write end of the self-pipe the signal handler reports to (-1 when no run() is active).
std::atomic<int> g_signal_pipe_write{-1};

extern "C" void on_signal(int signo) {
  int saved = errno;
  int fd = g_signal_pipe_write.load();
  if (fd >= 0) {
    unsigned char b = static_cast<unsigned char>(signo);
    [[maybe_unused]] auto n = ::write(fd, &b, 1);
  }
  errno = saved;
}

void write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the reader went away; the job goes on
    done += static_cast<size_t>(n);
  }
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// A pipe whose read end we poll, and the partial line read from it so far.
struct OutputStream {
  int fd = -1;
  int target = STDOUT_FILENO;
  std::string prefix;
  std::string pending;

  void feed(const char* data, size_t n) {
    pending.append(data, n);
    std::string out;
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      out += prefix + pending.substr(start, nl - start + 1);
    pending.erase(0, start);
    if (!out.empty()) write_all(target, out);
  }
  void flush() {
    if (!pending.empty()) write_all(target, prefix + pending + "\n");
    pending.clear();
  }
};

struct Child {
  pid_t pid = -1;
  bool running = false;
  std::string command;  // for messages
};

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Installs the handlers for the duration of run(), restores the old ones after.
class SignalScope {
 public:
  explicit SignalScope(int write_fd) {
    g_signal_pipe_write.store(write_fd);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    // A closed stdout must not kill the launcher while ranks still run.
    ::sigaction(SIGPIPE, &ign, &old_pipe_);
  }
  ~SignalScope() {
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
    ::sigaction(SIGPIPE, &old_pipe_, nullptr);
    g_signal_pipe_write.store(-1);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  static constexpr std::array<int, 4> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
  std::array<struct sigaction, 4> old_{};
  struct sigaction old_pipe_ {};
};

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::pair<Fd, Fd> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw LaunchError(fmt::format("pipe: {}", std::strerror(errno)));
  return {Fd(p[0]), Fd(p[1])};
}

// Everything a child needs after fork, prepared before it so the child only makes syscalls.
struct PreparedExec {
  std::string path;
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

PreparedExec prepare(const ChildSpec& spec) {
  PreparedExec p;
  p.path = resolve_program(spec.argv.at(0));
  p.argv_storage = spec.argv;
  for (char** e = ::environ; e && *e; ++e) {
    std::string_view kv(*e);
    bool overridden = false;
    for (const auto& [k, v] : spec.env)
      overridden = overridden || (kv.size() > k.size() && kv.compare(0, k.size(), k) == 0 && kv[k.size()] == '=');
    if (!overridden) p.env_storage.emplace_back(kv);
  }
  for (const auto& [k, v] : spec.env) p.env_storage.push_back(k + "=" + v);
  for (auto& s : p.argv_storage) p.argv.push_back(s.data());
  p.argv.push_back(nullptr);
  for (auto& s : p.env_storage) p.envp.push_back(s.data());
  p.envp.push_back(nullptr);
  return p;
}

[[noreturn]] void child_fail(int report_fd, int err) {
  [[maybe_unused]] auto n = ::write(report_fd, &err, sizeof(err));
  ::_exit(127);
}

}  // namespace

std::string resolve_program(const std::string& argv0) {
  if (argv0.empty()) throw LaunchError("no program given");
  if (argv0.find('/') != std::string::npos) {
    struct stat st {};
    if (::stat(argv0.c_str(), &st) != 0)
      throw LaunchError(fmt::format("program '{}' not found", argv0));
    if (!is_executable_file(argv0))
      throw LaunchError(fmt::format("program '{}' is not an executable file (check its permissions)", argv0));
    return argv0;
  }
  const char* path_env = std::getenv("PATH");
  std::string_view path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    auto colon = path.find(':', start);
    std::string dir(path.substr(start, colon == path.npos ? path.npos : colon - start));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + argv0;
    if (is_executable_file(candidate)) return candidate;
    if (colon == path.npos) break;
    start = colon + 1;
  }
  throw LaunchError(fmt::format(
      "program '{}' not found in PATH (give a path such as ./{} for a program in this directory)",
      argv0, argv0));
}

int ProcessSupervisor::run(const std::vector<ChildSpec>& specs) {
  const auto& log = options_.log;
  std::vector<PreparedExec> prepared;
  for (const auto& spec : specs) prepared.push_back(prepare(spec));  // may throw: nothing started yet

  auto [sig_read, sig_write] = make_pipe();
  ::fcntl(sig_write.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(sig_read.get(), F_SETFL, O_NONBLOCK);
  SignalScope signal_scope(sig_write.get());

  std::vector<Child> children(specs.size());
  std::vector<OutputStream> streams;
  const pid_t parent = ::getpid();

  bool terminating = false;
  bool killed = false;
  int result = 0;
  std::chrono::steady_clock::time_point kill_deadline{};

  auto signal_all = [&](int signo) {
    for (const auto& c : children)
      if (c.running) ::killpg(c.pid, signo);
  };
  auto begin_termination = [&](int signo) {
    terminating = true;
    bool interrupted = false;
    for (size_t i = 0; i < children.size(); ++i) {
      if (!children[i].running) continue;
      if (specs[i].interrupt_before_term && signo != SIGKILL) {
        ::killpg(children[i].pid, SIGINT);
        interrupted = true;
      } else {
        ::killpg(children[i].pid, signo);
      }
    }
    if (interrupted) {
      // DeepSpeed's runner waits 0.1 s between pdsh's SIGINT and SIGTERM. SIGCHLDs and
      // signals meanwhile wait in the self-pipe.
      struct timespec pause {0, 100 * 1000 * 1000};
      while (::nanosleep(&pause, &pause) != 0 && errno == EINTR) {
      }
      for (size_t i = 0; i < children.size(); ++i)
        if (children[i].running && specs[i].interrupt_before_term) ::killpg(children[i].pid, SIGTERM);
    }
    kill_deadline = std::chrono::steady_clock::now() + options_.term_grace;
  };

  std::optional<LaunchError> start_error;
  std::vector<Fd> held_stdin;  // write ends of stdin_hold_open pipes, closed when run() returns
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& spec = specs[i];
    auto& exec = prepared[i];
    Fd out_r, out_w, err_r, err_w, log_fd;
    if (!spec.log_file.empty()) {
      log_fd = Fd(::open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
      if (log_fd.get() < 0) {
        start_error.emplace(fmt::format("cannot open rank log '{}': {}", spec.log_file, std::strerror(errno)));
        break;
      }
    } else if (!spec.output_prefix.empty()) {
      std::tie(out_r, out_w) = make_pipe();
      std::tie(err_r, err_w) = make_pipe();
    }
    Fd in_r;
    if (spec.stdin_hold_open) {
      Fd in_w;
      std::tie(in_r, in_w) = make_pipe();
      held_stdin.push_back(std::move(in_w));
    }
    auto [report_r, report_w] = make_pipe();

    pid_t pid = ::fork();
    if (pid < 0) {
      start_error.emplace(fmt::format("fork: {}", std::strerror(errno)));
      break;
    }
    if (pid == 0) {
      // Child: only syscalls from here on.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);  // the launcher died before prctl
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE}) ::sigaction(s, &dfl, nullptr);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      if (in_r.get() >= 0 && ::dup2(in_r.get(), STDIN_FILENO) < 0) child_fail(report_w.get(), errno);
      if (spec.stdin_null) {
        int null_fd = ::open("/dev/null", O_RDONLY);
        if (null_fd < 0 || ::dup2(null_fd, STDIN_FILENO) < 0) child_fail(report_w.get(), errno);
      }
      if (log_fd.get() >= 0) {
        if (::dup2(log_fd.get(), STDOUT_FILENO) < 0 || ::dup2(log_fd.get(), STDERR_FILENO) < 0)
          child_fail(report_w.get(), errno);
      } else if (out_w.get() >= 0) {
        if (::dup2(out_w.get(), STDOUT_FILENO) < 0 || ::dup2(err_w.get(), STDERR_FILENO) < 0)
          child_fail(report_w.get(), errno);
      }
      if (!spec.cpu_affinity.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int cpu : spec.cpu_affinity) CPU_SET(cpu, &set);
        if (::sched_setaffinity(0, sizeof(set), &set) != 0) child_fail(report_w.get(), errno);
      }
      ::execve(exec.path.c_str(), exec.argv.data(), exec.envp.data());
      child_fail(report_w.get(), errno);
    }
    ::setpgid(pid, pid);  // also here, so killpg works even before the child ran
    children[i] = {pid, true, shell_join(spec.argv)};
    report_w.reset();
    // The report pipe is close-on-exec: EOF means exec succeeded, 4 bytes mean it failed.
    int err = 0;
    ssize_t n;
    do {
      n = ::read(report_r.get(), &err, sizeof(err));
    } while (n < 0 && errno == EINTR);
    if (n == sizeof(err)) {
      start_error.emplace(fmt::format("cannot execute '{}': {}", exec.path, std::strerror(err)));
      break;
    }
    if (out_r.get() >= 0) {
      streams.push_back({out_r.release(), STDOUT_FILENO, spec.output_prefix, {}});
      streams.push_back({err_r.release(), STDERR_FILENO, spec.output_prefix, {}});
    }
  }
  if (start_error) {
    log.error(start_error->what());
    begin_termination(SIGKILL);
    result = 1;
  }

  auto reap = [&] {
    for (auto& c : children) {
      if (!c.running) continue;
      int status = 0;
      pid_t r = ::waitpid(c.pid, &status, WNOHANG);
      if (r != c.pid) continue;
      c.running = false;
      ::killpg(c.pid, SIGKILL);  // descendants the rank left behind
      const int code = exit_code_of(status);
      if (code != 0 && !terminating) {
        log.error(fmt::format("{} exits with return code = {}", c.command, code));
        result = code;
        begin_termination(SIGTERM);
      }
    }
  };

  const bool watch_stdin = options_.watch_stdin;
  bool stdin_open = watch_stdin;
  std::optional<std::chrono::steady_clock::time_point> drain_deadline;
  while (true) {
    reap();
    const bool any_running = std::any_of(children.begin(), children.end(), [](const Child& c) { return c.running; });
    const bool any_stream = std::any_of(streams.begin(), streams.end(), [](const OutputStream& s) { return s.fd >= 0; });
    if (!any_running && !any_stream) break;
    auto now = std::chrono::steady_clock::now();
    if (!any_running && !drain_deadline) {
      // A rank's stray descendant (outside its process group) may hold the pipe open.
      drain_deadline = now + std::chrono::seconds(2);
    }
    if (drain_deadline && now >= *drain_deadline) break;
    if (terminating && !killed && now >= kill_deadline) {
      log.warning("ranks still running after the grace period; sending SIGKILL");
      signal_all(SIGKILL);
      killed = true;
    }

    std::vector<pollfd> fds;
    fds.push_back({sig_read.get(), POLLIN, 0});
    if (stdin_open) fds.push_back({STDIN_FILENO, POLLIN, 0});
    const size_t first_stream = fds.size();
    for (const auto& s : streams) fds.push_back({s.fd, static_cast<short>(s.fd >= 0 ? POLLIN : 0), 0});
    int timeout_ms = 1000;  // also a safety net should a SIGCHLD be coalesced away
    if (terminating && !killed)
      timeout_ms = std::clamp<int>(static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kill_deadline - now).count()), 0, 1000);
    if (drain_deadline) timeout_ms = std::min(timeout_ms, 100);
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR)
      throw LaunchError(fmt::format("poll: {}", std::strerror(errno)));

    if (fds[0].revents & POLLIN) {
      unsigned char sigs[64];
      ssize_t n;
      while ((n = ::read(sig_read.get(), sigs, sizeof(sigs))) > 0) {
        for (ssize_t i = 0; i < n; ++i) {
          int signo = sigs[i];
          if (signo == SIGCHLD) continue;  // reaped at the top of the loop
          if (!terminating) {
            log.info(fmt::format("Main process received {}, exiting", sigabbrev_np(signo) ? std::string("SIG") + sigabbrev_np(signo) : std::to_string(signo)));
            result = 1;
            begin_termination(signo == SIGHUP ? SIGTERM : signo);
          } else if (!killed) {
            log.warning("second signal: sending SIGKILL to every rank");
            signal_all(SIGKILL);
            killed = true;
          }
        }
      }
    }
    if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[256];
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;
        if (!terminating) {
          log.info("the runner's connection closed (stdin at end of file); stopping the ranks");
          result = 1;
          begin_termination(SIGTERM);
        }
      }
    }
    for (size_t i = 0; i < streams.size(); ++i) {
      auto& s = streams[i];
      if (s.fd < 0 || !(fds[first_stream + i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = ::read(s.fd, buf, sizeof(buf));
      if (n > 0) {
        s.feed(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        s.flush();
        ::close(s.fd);
        s.fd = -1;
      }
    }
  }
  for (auto& s : streams) {
    if (s.fd >= 0) {
      s.flush();
      ::close(s.fd);
    }
  }
  if (start_error) throw LaunchError(start_error->what());
  return result;
}

}  // namespace deepspeed::launcher
