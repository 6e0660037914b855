// Real jobs through build/bin/deepspeed: ranks are real processes on this machine. Every
// test checks that no rank outlives the launcher (the pids the ranks wrote are gone).
#include <gtest/gtest.h>

// ds_report's test needs the ops this build has; tests/sanitize (a clang build of the
// launcher alone) has neither ops nor ds_report, and runs the rest of this file.
#if __has_include(<deepspeed/ops_config.h>)
#include <deepspeed/ops_config.h>
#define DS_TEST_DS_REPORT 1
#endif
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "launcher/shell_quote.h"
#include "processes.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using deepspeed::launcher::shell_join;
using deepspeed::launcher::shell_quote;
using deepspeed::testing::alive;
using deepspeed::testing::spawn_background;
using deepspeed::testing::wait_for_exit;
using deepspeed::testing::wait_for_pid_files;
using deepspeed::testing::wait_until;

namespace {

const std::string kDeepspeed = DS_BINARY_DIR "/bin/deepspeed";
const std::string kProbe = DS_BINARY_DIR "/bin/ds_rank_probe";
const std::string kDsReport = DS_BINARY_DIR "/bin/ds_report";

int test_port() { return 29500 + static_cast<int>(::getpid() % 1000); }

struct Result {
  int rc = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  double seconds = 0;
};

class TempDir {
 public:
  TempDir() {
    for (int i = 0;; ++i) {
      path_ = fs::temp_directory_path() / ("ds_launch_it_" + std::to_string(::getpid()) + "_" + std::to_string(i));
      if (fs::create_directory(path_)) break;
    }
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

// Runs argv in cwd (a 30 s `timeout` guards against a hang), capturing stdout and stderr.
Result run(const std::vector<std::string>& argv, const std::string& cwd = ".") {
  TempDir io;
  const std::string out = io.str() + "/out", err = io.str() + "/err";
  const std::string cmd = "cd " + shell_quote(cwd) + " && timeout -s KILL 30 " + shell_join(argv) + " >" + out +
                          " 2>" + err + " </dev/null";
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(cmd.c_str());
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::stringstream so, se;
  so << std::ifstream(out).rdbuf();
  se << std::ifstream(err).rdbuf();
  r.out = so.str();
  r.err = se.str();
  return r;
}

// The pids the ranks have written into `dir` so far.
std::vector<pid_t> read_pids(const std::string& dir) { return wait_for_pid_files(dir, 0, 0ms); }

void expect_all_gone(const std::vector<pid_t>& pids) {
  // The launcher has exited; give the kernel a moment to finish reaping.
  wait_until(
      [&] {
        for (pid_t p : pids) {
          if (alive(p)) return false;
        }
        return true;
      },
      3s);
  for (pid_t p : pids) EXPECT_FALSE(alive(p)) << "rank process " << p << " outlived the launcher";
}

std::vector<std::string> ds(std::vector<std::string> flags) {
  flags.insert(flags.begin(), kDeepspeed);
  return flags;
}

TEST(LauncherJob, ThreeRanksGetTheirEnvironment) {
  TempDir pids;
  const auto r = run(ds({"--num_gpus", "3", "--master_port", std::to_string(test_port()), kProbe, "--pid-dir",
                         pids.str(), "--env", "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_SIZE", "CROSS_RANK",
                         "CROSS_SIZE", "MASTER_ADDR", "MASTER_PORT", "CUDA_VISIBLE_DEVICES"}));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  for (int rank = 0; rank < 3; ++rank) {
    const std::string p = "[rank" + std::to_string(rank) + "]: ";
    EXPECT_NE(r.out.find(p + "ARGS --local_rank=" + std::to_string(rank) + " --pid-dir"), std::string::npos) << r.out;
    const std::vector<std::string> expected = {
        "RANK=" + std::to_string(rank), "LOCAL_RANK=" + std::to_string(rank), "WORLD_SIZE=3", "LOCAL_SIZE=3",
        "CROSS_RANK=0", "CROSS_SIZE=1", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(test_port()),
        "CUDA_VISIBLE_DEVICES=0,1,2"};
    for (const auto& kv : expected)
      EXPECT_NE(r.out.find(p + kv + "\n"), std::string::npos) << kv << "\n" << r.out;
  }
  EXPECT_EQ(read_pids(pids.str()).size(), 3u);
  expect_all_gone(read_pids(pids.str()));
}

TEST(LauncherJob, SingleRankOutputIsNotPrefixed) {
  const auto r = run(ds({"--num_gpus", "1", kProbe, "--env", "RANK"}));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "ARGS --local_rank=0 --env RANK\nRANK=0\n");
}

TEST(LauncherJob, NoLocalRank) {
  const auto r = run(ds({"--num_gpus", "1", "--no_local_rank", kProbe, "x"}));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "ARGS x\n");
}

TEST(LauncherJob, FailingRankStopsTheJobWithItsCode) {
  TempDir pids;
  const auto r = run(ds({"--num_gpus", "3", kProbe, "--pid-dir", pids.str(), "--exit-rank", "1", "--exit-code", "3",
                         "--delay-ms", "300", "--sleep-ms", "60000"}));
  EXPECT_EQ(r.rc, 3) << r.out << r.err;
  EXPECT_LT(r.seconds, 10.0);
  EXPECT_NE(r.err.find("exits with return code = 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[rank1]: rank 1 exiting with 3"), std::string::npos) << r.err;
  EXPECT_EQ(read_pids(pids.str()).size(), 3u);
  expect_all_gone(read_pids(pids.str()));
}

TEST(LauncherJob, RanksIgnoringSigtermAreKilledAfterTheGrace) {
  TempDir pids;
  const auto r = run(ds({"--num_gpus", "3", "--term_grace", "1", kProbe, "--pid-dir", pids.str(), "--ignore-term",
                         "--exit-rank", "0", "--exit-code", "5", "--delay-ms", "300", "--sleep-ms", "60000"}));
  EXPECT_EQ(r.rc, 5) << r.err;
  EXPECT_LT(r.seconds, 8.0);
  EXPECT_NE(r.err.find("sending SIGKILL"), std::string::npos) << r.err;
  expect_all_gone(read_pids(pids.str()));
}

// Waits for a job's first process to exit after it was signalled (its exit code, 128+N for
// signal N); one still running after 10 s is killed and fails the test.
std::optional<int> expect_exit_after_signal(pid_t pid) {
  const auto code = wait_for_exit(pid, 10s);
  if (!code) {
    ::kill(pid, SIGKILL);
    wait_for_exit(pid, 10s);
    ADD_FAILURE() << "process " << pid << " did not exit within 10 s of the signal";
  }
  return code;
}

// Starts the launcher in the background, waits for `ranks` pid files, sends `signo`.
void signal_test(int signo, int ranks) {
  TempDir pids;
  const auto argv = ds({"--num_gpus", std::to_string(ranks), "--term_grace", "2", kProbe, "--pid-dir", pids.str(),
                        "--sleep-ms", "60000"});
  const pid_t launcher = spawn_background(argv, pids.str() + "/launcher.log");
  ASSERT_GE(launcher, 0);
  const auto rank_pids = wait_for_pid_files(pids.str(), ranks, 10s);
  ASSERT_EQ(rank_pids.size(), static_cast<size_t>(ranks));
  ASSERT_EQ(::kill(launcher, signo), 0);
  const auto code = expect_exit_after_signal(launcher);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 1);
  expect_all_gone(rank_pids);
}

TEST(LauncherJob, SigtermToTheLauncherEndsEveryRank) { signal_test(SIGTERM, 3); }
TEST(LauncherJob, SigintToTheLauncherEndsEveryRank) { signal_test(SIGINT, 2); }

TEST(LauncherJob, SigkillOfTheLauncherStillEndsEveryRank) {
  // The second line of defence: PR_SET_PDEATHSIG.
  TempDir pids;
  const auto argv = ds({"--num_gpus", "2", kProbe, "--pid-dir", pids.str(), "--sleep-ms", "60000"});
  const pid_t launcher = spawn_background(argv, pids.str() + "/launcher.log");
  ASSERT_GE(launcher, 0);
  const auto rank_pids = wait_for_pid_files(pids.str(), 2, 10s);
  ASSERT_EQ(rank_pids.size(), 2u);
  ::kill(launcher, SIGKILL);
  expect_exit_after_signal(launcher);
  expect_all_gone(rank_pids);
}

// A stand-in for pdsh where every host is this machine: it logs its arguments (one line per
// call, arguments separated by \x1f), then runs its command (the last argument) once per -w
// host with %n replaced by the host's index, each in a new session as on a remote host, so
// the runner's signals to pdsh never reach what it started; it exits with the largest code.
constexpr const char* kFakePdsh = R"sh(#!/bin/sh
for a in "$@"; do printf '%s\037' "$a" >> "$FAKE_PDSH_LOG"; done; printf '\n' >> "$FAKE_PDSH_LOG"
hosts=
while [ $# -gt 1 ]; do
  case $1 in -w) hosts=$2; shift 2;; -f) shift 2;; *) shift;; esac
done
i=0; pids=
for h in $(echo "$hosts" | tr , ' '); do
  setsid sh -c "$(printf '%s' "$1" | sed "s/%n/$i/g")" </dev/null & pids="$pids $!"
  i=$((i+1))
done
rc=0
for p in $pids; do wait $p; r=$?; [ $r -gt $rc ] && rc=$r; done
exit $rc
)sh";

TEST(LauncherPdsh, SigtermRunsTheKillCommandOnEveryHost) {
  // Two "hosts" through the fake pdsh: their node launchers are out of the runner's reach, so
  // only the kill command (pkill -f through pdsh, as DeepSpeed's runner) can stop them.
  TempDir dir, pids;
  const auto fake = dir.write("pdsh", kFakePdsh);
  fs::permissions(fake, fs::perms::owner_all);
  const auto hf = dir.write("hostfile", "h1 slots=1\nh2 slots=1\n");
  const std::string log = dir.str() + "/pdsh.log";
  const std::string port = std::to_string(test_port() + 1);
  auto argv = ds({"-H", hf, "--no_ssh_check", "--master_addr", "127.0.0.1", "--master_port", port, kProbe,
                  "--pid-dir", pids.str(), "--sleep-ms", "60000"});
  const std::string path = dir.str() + ":" + std::getenv("PATH");
  const pid_t runner = spawn_background(argv, dir.str() + "/runner.log", {{"PATH", path}, {"FAKE_PDSH_LOG", log}});
  ASSERT_GE(runner, 0);
  const auto rank_pids = wait_for_pid_files(pids.str(), 2, 10s);
  ASSERT_EQ(rank_pids.size(), 2u);
  ASSERT_EQ(::kill(runner, SIGTERM), 0);
  const auto code = expect_exit_after_signal(runner);
  if (!code) {
    for (pid_t p : rank_pids) ::kill(p, SIGKILL);
    return;
  }
  EXPECT_EQ(*code, 1);
  expect_all_gone(rank_pids);
  for (pid_t p : rank_pids) ::kill(p, SIGKILL);  // never leave one behind, even on failure

  std::vector<std::vector<std::string>> calls;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> words;
    std::stringstream ss(line);
    for (std::string w; std::getline(ss, w, '\x1f');) words.push_back(w);
    calls.push_back(words);
  }
  ASSERT_EQ(calls.size(), 2u);  // the launch, then the kill
  const std::vector<std::string> head = {"-S", "-f", "1024", "-w", "h1,h2"};
  EXPECT_EQ(std::vector<std::string>(calls[1].begin(), calls[1].end() - 1), head);
  EXPECT_EQ(calls[1].back().rfind("pkill -f '[/]", 0), 0u) << calls[1].back();
  EXPECT_NE(calls[1].back().find(" --master_port=" + port + " '"), std::string::npos) << calls[1].back();
}

TEST(LauncherJob, DeepspeedEnvValuesReachTheRanks) {
  TempDir cwd;
  cwd.write(".deepspeed_env", "DS_TEST_SPACES=a value with  spaces\nDS_TEST_QUOTES=it's \"quoted\" $HOME\n");
  const auto r = run(ds({"--num_gpus", "2", kProbe, "--env", "DS_TEST_SPACES", "DS_TEST_QUOTES"}), cwd.str());
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* p : {"[rank0]: ", "[rank1]: "}) {
    EXPECT_NE(r.out.find(std::string(p) + "DS_TEST_SPACES=a value with  spaces\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(std::string(p) + "DS_TEST_QUOTES=it's \"quoted\" $HOME\n"), std::string::npos) << r.out;
  }
}

TEST(LauncherJob, EachRankLogAndSavePid) {
  TempDir logs;
  const auto r = run(ds({"--num_gpus", "2", "--enable_each_rank_log", logs.str() + "/logs", "--save_pid", kProbe,
                         "--env", "RANK"}));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "");
  int files = 0;
  for (const auto& e : fs::directory_iterator(logs.str() + "/logs")) {
    ++files;
    EXPECT_TRUE(std::regex_match(e.path().filename().string(), std::regex("[0-9]{14}_rank[01]\\.log")));
    std::stringstream ss;
    ss << std::ifstream(e.path()).rdbuf();
    EXPECT_NE(ss.str().find("RANK="), std::string::npos);
  }
  EXPECT_EQ(files, 2);
}

TEST(LauncherJob, BindCoresToRank) {
  const auto r = run(ds({"--num_gpus", "1", "--bind_cores_to_rank", "--bind_core_list", "0", kProbe, "--env", "OMP_NUM_THREADS"}));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("OMP_NUM_THREADS=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("binding ranks to cores with"), std::string::npos) << r.err;
}

TEST(LauncherJob, HostfileWithOneHostRunsLocally) {
  TempDir dir;
  const auto hf = dir.write("hostfile", "# a comment\nworker-0 slots=4\n");
  const auto r = run(ds({"-H", hf, "-i", "worker-0:1,3", kProbe, "--env", "RANK", "CUDA_VISIBLE_DEVICES"}));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("[rank1]: CUDA_VISIBLE_DEVICES=1,3\n"), std::string::npos) << r.out;
}

TEST(LauncherDryRun, PrintsThePlanAndRunsNothing) {
  TempDir pids;
  const auto r = run(ds({"--num_gpus", "2", "--master_port", "1234", "--dry_run", kProbe, "--pid-dir", pids.str()}));
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["world_info"], "eyJsb2NhbGhvc3QiOiBbMCwgMV19");
  EXPECT_EQ(j["master_addr"], "127.0.0.1");
  EXPECT_EQ(j["master_port"], 1234);
  EXPECT_EQ(j["ranks"].size(), 2u);
  EXPECT_EQ(j["ranks"][1]["env"]["LOCAL_RANK"], "1");
  EXPECT_EQ(j["commands"][0]["argv"][0], kDeepspeed);
  EXPECT_TRUE(read_pids(pids.str()).empty());
}

// Bad input: exit 1 and a message naming what is wrong.
void expect_bad_input(const std::vector<std::string>& flags, const std::string& needle, const std::string& cwd = ".") {
  const auto r = run(ds(flags), cwd);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("deepspeed: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err << "\nexpected: " << needle;
}

TEST(LauncherBadInput, MalformedHostfileLineWithLineNumber) {
  TempDir dir;
  const auto hf = dir.write("hostfile", "worker-0 slots=2\n\nworker-1 slots=x\n");
  expect_bad_input({"-H", hf, kProbe}, hf + ":3: Hostfile contains a bad entry: 'worker-1 slots=x'");
}

TEST(LauncherBadInput, DuplicateHost) {
  TempDir dir;
  const auto hf = dir.write("hostfile", "worker-0 slots=2\nworker-0 slots=1\n");
  expect_bad_input({"-H", hf, kProbe}, hf + ":2: Hostfile contains multiple entries for worker-0");
}

TEST(LauncherBadInput, IncludeWithExclude) {
  expect_bad_input({"-i", "localhost", "-e", "localhost:0", kProbe}, "mutually exclusive");
}

TEST(LauncherBadInput, UnknownHost) {
  TempDir dir;
  const auto hf = dir.write("hostfile", "worker-0 slots=2\n");
  expect_bad_input({"-H", hf, "-i", "worker-9", kProbe}, "Hostname 'worker-9' not found in hostfile");
}

TEST(LauncherBadInput, SlotNotOnHost) {
  TempDir dir;
  const auto hf = dir.write("hostfile", "worker-0 slots=2\n");
  expect_bad_input({"-H", hf, "-i", "worker-0:2", kProbe}, "No slot '2' specified on host 'worker-0'");
}

TEST(LauncherBadInput, NumNodesBeyondTheHostfile) {
  TempDir dir;
  const auto hf = dir.write("hostfile", "worker-0 slots=2\nworker-1 slots=2\n");
  expect_bad_input({"-H", hf, "--num_nodes", "3", kProbe}, "--num_nodes=3 but only 2 hosts are available");
  expect_bad_input({"--num_nodes", "2", kProbe}, "Num nodes is >1 but no extra nodes available via hostfile");
}

TEST(LauncherBadInput, MissingOrNonExecutableProgram) {
  TempDir dir;
  expect_bad_input({dir.str() + "/no_such_program"}, "program '" + dir.str() + "/no_such_program' not found");
  const auto script = dir.write("not_executable", "#!/bin/sh\necho hi\n");
  expect_bad_input({script}, "is not an executable file");
  expect_bad_input({"no_such_program_in_path_xyz"}, "not found in PATH");
}

TEST(LauncherBadInput, UnsupportedAndUnknownFlags) {
  expect_bad_input({"--autotuning", "run", kProbe}, "--autotuning is not supported");
  expect_bad_input({"--elastic_training", kProbe}, "--elastic_training is not supported");
  expect_bad_input({"--frobnicate", kProbe}, "unrecognized flag '--frobnicate'");
  expect_bad_input({}, "no program given");
}

TEST(LauncherBadInput, BadDeepspeedEnvLine) {
  TempDir cwd;
  cwd.write(".deepspeed_env", "OK=1\nNOT A PAIR\n");
  expect_bad_input({kProbe}, ".deepspeed_env:2: expected KEY=VALUE", cwd.str());
}

#if DS_TEST_DS_REPORT
TEST(DsReport, PlainWhenPipedWithOpTableAndEnvironment) {
  const auto r = run({kDsReport});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.find("\033["), std::string::npos) << "colour codes in piped output";
  EXPECT_NE(r.out.find("op name ................ installed .. compatible\n"), std::string::npos) << r.out;
#if DEEPSPEED_OP_FUSED_ADAM_BUILT
  EXPECT_NE(r.out.find("fused_adam ............. [YES] ...... [OKAY]\n"), std::string::npos) << r.out;
#else
  EXPECT_NE(r.out.find("fused_adam ............. [NO] ....... [NO]\n"), std::string::npos) << r.out;
#endif
#if DEEPSPEED_OP_CPU_ADAM_BUILT
  EXPECT_NE(r.out.find("cpu_adam ............... [YES] ...... [OKAY]\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu simd ......................... "), std::string::npos) << r.out;
#else
  EXPECT_NE(r.out.find("cpu_adam ............... [NO] ....... [OKAY]\n"), std::string::npos) << r.out;
#endif
#if DEEPSPEED_OP_QUANTIZER_BUILT
  // The quantizer op has CPU kernels: installed and compatible without a GPU.
  EXPECT_NE(r.out.find("quantizer .............. [YES] ...... [OKAY]\n"), std::string::npos) << r.out;
#endif
#if DEEPSPEED_OP_ASYNC_IO_BUILT
  // [OKAY] where io_uring works here; else [NO] and why (handles then fall back to threads).
  EXPECT_TRUE(r.out.find("async_io ............... [YES] ...... [OKAY]\n") != std::string::npos ||
              (r.out.find("async_io ............... [YES] ...... [NO]\n") != std::string::npos &&
               r.out.find("async_io: io_uring") != std::string::npos))
      << r.out;
#elif !__has_include(<liburing.h>)
  EXPECT_NE(r.out.find("async_io ............... [NO] ....... [NO]\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("async_io: no liburing"), std::string::npos) << r.out;
#endif
  EXPECT_NE(r.out.find("deepspeed info ................... "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("shared memory (/dev/shm) size .... "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu simd features ................ "), std::string::npos) << r.out;
  const auto hidden = run({kDsReport, "--hide_operator_status", "--hide_errors_and_warnings"});
  EXPECT_EQ(hidden.out.find("op name"), std::string::npos);
  EXPECT_EQ(hidden.out.find("[WARNING]"), std::string::npos);
}
#endif

}  // namespace
