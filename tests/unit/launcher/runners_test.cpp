#include "launcher/runners/multinode_runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "launcher/shell_quote.h"
#include "launcher/system_probe.h"
#include "test_util.h"

namespace deepspeed::launcher {
namespace {

using testing::expect_launch_error;
using Argv = std::vector<std::string>;

struct Fixture {
  RunnerOptions o;
  MultiNodeContext ctx;
  explicit Fixture(RunnerOptions options, HostPool pool = {{"h1", 2}, {"h2", 2}})
      : o(std::move(options)), ctx{o, pool, expand_pool(pool), {}, "WI", "10.0.0.1", 29500, "/work dir", "/bin/deepspeed", 77, {}, {}, {}} {
    ctx.exports.set("NCCL_DEBUG", "INFO");
    ctx.exports.set("MSG", "it's two words");
  }
};

// Arguments joined by spaces: how pkill -f sees a command line.
std::string join(const Argv& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

RunnerOptions base(const std::string& launcher) {
  RunnerOptions o;
  o.launcher = launcher;
  o.hostfile = "/job/hostfile";
  o.program = "./train";
  o.program_args = {"--lr", "0.1"};
  return o;
}

TEST(Runners, NodeLauncherArgvCarriesFlags) {
  auto o = base("pdsh");
  o.no_local_rank = true;
  o.save_pid = true;
  o.enable_each_rank_log = "/logs";
  o.bind_cores_to_rank = true;
  o.bind_core_list = "0-3";
  o.module = true;
  const Argv expected = {"/bin/deepspeed", "--launch", "--world_info=WI", "--node_rank=%n", "--master_addr=a",
                         "--master_port=1", "--module", "--no_local_rank", "--save_pid=77",
                         "--enable_each_rank_log=/logs", "--bind_cores_to_rank", "--bind_core_list=0-3",
                         "--term_grace=30", "--log_level=info", "./train", "--lr", "0.1"};
  EXPECT_EQ(node_launcher_argv(o, "/bin/deepspeed", "WI", "%n", "a", 1, 77, false), expected);
}

TEST(Runners, Pdsh) {
  auto o = base("pdsh");
  o.ssh_port = 2222;
  o.launcher_args = "-R ssh";
  Fixture f(o);
  const auto cmds = pdsh_commands(f.ctx);
  ASSERT_EQ(cmds.size(), 1u);
  const Argv head = {"pdsh", "-S", "-f", "1024", "-w", "h1,h2", "-R", "ssh"};
  EXPECT_EQ(Argv(cmds[0].argv.begin(), cmds[0].argv.begin() + 8), head);
  EXPECT_EQ(cmds[0].argv.back(),
            "export NCCL_DEBUG=INFO; export MSG='it'\\''s two words'; cd '/work dir'; /bin/deepspeed --launch "
            "--world_info=WI --node_rank=%n --master_addr=10.0.0.1 --master_port=29500 --term_grace=30 "
            "--log_level=info ./train --lr 0.1");
  const std::vector<std::pair<std::string, std::string>> env = {{"PDSH_RCMD_TYPE", "ssh"}, {"PDSH_SSH_ARGS_APPEND", "-p 2222"}};
  EXPECT_EQ(cmds[0].env, env);
  EXPECT_TRUE(cmds[0].interrupt_before_term);  // SIGINT, then SIGTERM, as DeepSpeed's runner
}

TEST(Runners, PdshSshPortIsAppendedToTheUsersSshArgs) {
  auto o = base("pdsh");
  o.ssh_port = 2222;
  Fixture f(o);
  f.ctx.environ["PDSH_SSH_ARGS_APPEND"] = "-i /keys/id";
  const std::vector<std::pair<std::string, std::string>> env = {{"PDSH_RCMD_TYPE", "ssh"},
                                                                {"PDSH_SSH_ARGS_APPEND", "-i /keys/id -p 2222"}};
  EXPECT_EQ(pdsh_commands(f.ctx)[0].env, env);
  EXPECT_EQ(pdsh_kill_command(f.ctx).env, env);
}

TEST(Runners, PdshKillCommandRunsPkillThroughTheSamePdsh) {
  auto o = base("pdsh");
  o.ssh_port = 2222;
  o.launcher_args = "-R ssh";
  Fixture f(o);
  const Command kill = pdsh_kill_command(f.ctx);
  const Argv expected = {"pdsh", "-S", "-f", "1024", "-w", "h1,h2", "-R", "ssh",
                         "pkill -f '[/]bin/deepspeed --launch --world_info=WI --node_rank=[0-9]+ "
                         "--master_addr=10\\.0\\.0\\.1 --master_port=29500 '"};
  EXPECT_EQ(kill.argv, expected);
  EXPECT_EQ(kill.env, pdsh_commands(f.ctx)[0].env);
}

TEST(Runners, PdshKillPatternMatchesThisJobsNodeLaunchersOnly) {
  Fixture f(base("pdsh"));
  const std::regex re(pdsh_kill_pattern(f.ctx), std::regex::extended);
  // The node launcher's command line on host 1 (pkill -f matches the arguments joined by spaces).
  auto launcher = node_launcher_argv(f.o, "/bin/deepspeed", "WI", "1", "10.0.0.1", 29500, 77, false);
  const std::string mine = join(launcher);
  EXPECT_TRUE(std::regex_search(mine, re)) << mine;
  // The remote shell running the launch command (pdsh has put the host's index for %n) also
  // matches: it only waits for the launcher.
  std::string remote_shell = pdsh_commands(f.ctx)[0].argv.back();
  remote_shell.replace(remote_shell.find("%n"), 2, "1");
  EXPECT_TRUE(std::regex_search(remote_shell, re)) << remote_shell;
  // Not: another job on the same hosts (other port), the shell running the kill itself, the
  // runner, or a rank.
  auto other = node_launcher_argv(f.o, "/bin/deepspeed", "WI", "1", "10.0.0.1", 29501, 77, false);
  EXPECT_FALSE(std::regex_search(join(other), re));
  EXPECT_FALSE(std::regex_search("sh -c " + pdsh_kill_command(f.ctx).argv.back(), re));
  EXPECT_FALSE(std::regex_search("/bin/deepspeed -H hostfile ./train --lr 0.1", re));
  EXPECT_FALSE(std::regex_search("./train --local_rank=0 --lr 0.1", re));
}

TEST(Runners, PdshKillCommandKillsTheLauncherAndNotItsOwnShell) {
  // What a host does with the kill command: its shell runs `pkill -f '<pattern>'`. A process
  // whose command line is a node launcher's (bash exec -a) must die; the shell must not.
  Fixture f(base("pdsh"));
  f.ctx.world_info = "WI" + std::to_string(::getpid());  // only this test's process matches
  const auto launcher = node_launcher_argv(f.o, "/bin/deepspeed", f.ctx.world_info, "0", "10.0.0.1", 29500, 77, false);
  const std::string fake_launcher = "exec -a " + shell_quote(join(launcher)) + " sleep 30";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/bash", "bash", "-c", fake_launcher.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until bash has exec'd (the command line shows the launcher's).
  std::string cmdline;
  for (int i = 0; i < 200 && cmdline.find("--launch") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::getline(in, cmdline, '\0');
  }
  ASSERT_NE(cmdline.find("--launch"), std::string::npos);
  std::string out;
  EXPECT_EQ(run_and_capture({"/bin/sh", "-c", pdsh_kill_command(f.ctx).argv.back() + "; echo shell-survived"}, out), 0);
  EXPECT_EQ(out, "shell-survived\n");
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

TEST(Runners, SshOnePerHostWithWatchStdin) {
  auto o = base("ssh");
  o.ssh_port = 2222;
  o.launcher_args = "-F '/tmp/my config'";
  o.program_args = {"two words"};
  Fixture f(o);
  const auto cmds = ssh_commands(f.ctx);
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[1].host, "h2");
  const Argv head = {"ssh", "-p", "2222", "-F", "/tmp/my config", "h2"};
  EXPECT_EQ(Argv(cmds[1].argv.begin(), cmds[1].argv.begin() + 6), head);
  EXPECT_NE(cmds[1].argv.back().find("--node_rank=1 "), std::string::npos);
  EXPECT_NE(cmds[1].argv.back().find("--watch_stdin"), std::string::npos);
  EXPECT_NE(cmds[1].argv.back().find("./train 'two words'"), std::string::npos);
  EXPECT_NE(cmds[0].argv.back().find("--node_rank=0 "), std::string::npos);
}

TEST(Runners, OpenMpi) {
  Fixture f(base("openmpi"));
  const auto cmds = openmpi_commands(f.ctx);
  const Argv expected = {"mpirun", "-n", "4", "-hostfile", "/job/hostfile", "--mca", "btl", "^openib", "--mca",
                         "btl_tcp_if_include", "eth0", "-x", "NCCL_DEBUG=INFO", "-x", "MSG=it's two words",
                         "-x", "MASTER_ADDR=10.0.0.1", "-x", "MASTER_PORT=29500", "./train", "--lr", "0.1"};
  EXPECT_EQ(cmds[0].argv, expected);
  const std::vector<std::pair<std::string, std::string>> env = {{"UCX_TLS", "tcp"}};
  EXPECT_EQ(cmds[0].env, env);
}

TEST(Runners, OpenMpiKeepsUserTcpInterface) {
  auto o = base("openmpi");
  o.launcher_args = "--mca btl_tcp_if_include lo --allow-run-as-root";
  Fixture f(o);
  const auto argv = openmpi_commands(f.ctx)[0].argv;
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "btl_tcp_if_include"), 1);
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "eth0"), 0);
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "--allow-run-as-root"), 1);
}

TEST(Runners, PythonProgramsRunUnderPython) {
  auto o = base("openmpi");
  o.program = "train.py";
  Fixture f(o);
  const auto argv = openmpi_commands(f.ctx)[0].argv;
  EXPECT_EQ(Argv(argv.end() - 5, argv.end()), (Argv{"python3", "-u", "train.py", "--lr", "0.1"}));
}

TEST(Runners, MpiBackendsRefuseFilters) {
  for (const std::string l : {"openmpi", "mpich", "impi", "mvapich"}) {
    auto o = base(l);
    o.include = "h1";
    Fixture f(o);
    expect_launch_error([&] { multinode_commands(f.ctx); }, "backend does not support worker include/exclusion");
    auto o2 = base(l);
    o2.num_gpus = 1;
    Fixture f2(o2);
    expect_launch_error([&] { multinode_commands(f2.ctx); }, "backend does not support limiting num nodes/gpus");
  }
}

TEST(Runners, UniformSlotsRequired) {
  for (const std::string l : {"mpich", "impi", "mvapich"}) {
    Fixture f(base(l), {{"h1", 2}, {"h2", 1}});
    expect_launch_error([&] { multinode_commands(f.ctx); }, "requires same number of devices per node");
  }
}

TEST(Runners, Mpich) {
  Fixture f(base("mpich"));
  const Argv expected = {"mpirun", "-n", "4", "-ppn", "2", "-genv", "NCCL_DEBUG=INFO", "-genv", "MSG=it's two words",
                         "-genv", "MASTER_ADDR", "10.0.0.1", "-genv", "MASTER_PORT", "29500", "-genv", "WORLD_SIZE",
                         "4", "-genv", "LOCAL_SIZE", "2", "-hosts", "h1,h2", "/bin/deepspeed", "--mpi_helper=mpich",
                         "./train", "--lr", "0.1"};
  EXPECT_EQ(mpich_commands(f.ctx)[0].argv, expected);
}

TEST(Runners, Impi) {
  Fixture f(base("impi"), {{"h1", 1}, {"h2", 1}});
  const auto argv = impi_commands(f.ctx)[0].argv;
  const std::string joined = shell_join(argv);
  EXPECT_NE(joined.find("mpirun -ppn 1 -genv NCCL_DEBUG INFO -genv MSG 'it'\\''s two words' -genv MASTER_ADDR 10.0.0.1"), std::string::npos) << joined;
  EXPECT_NE(joined.find("-genv I_MPI_PIN 0 -hosts h1,h2 -n 1 -env RANK 0 -env LOCAL_RANK 0 ./train --lr 0.1 : -n 1 -env RANK 1 -env LOCAL_RANK 0 ./train --lr 0.1"), std::string::npos) << joined;
}

TEST(Runners, Mvapich) {
  auto o = base("mvapich");
  o.launcher_args = "-verbose";
  Fixture f(o);
  const Argv expected = {"mpirun", "-np", "4", "-ppn", "2", "--hostfile", "/tmp/deepspeed_mvapich_hostfile",
                         "-verbose",
                         "-env", "MV2_SMP_USE_CMA=0", "-env", "MV2_DEBUG_SHOW_BACKTRACE=1", "-env", "MV2_USE_CUDA=1",
                         "-env", "MV2_SUPPORT_DL=1", "-env", "MV2_ENABLE_AFFINITY=0",
                         "-env", "MV2_INTER_ALLGATHER_TUNING=5", "-env", "MV2_CUDA_USE_NAIVE=0",
                         "-env", "NCCL_DEBUG=INFO", "-env", "MSG=it's two words",
                         "-env", "MASTER_ADDR=10.0.0.1", "-env", "MASTER_PORT=29500", "./train", "--lr", "0.1"};
  const auto cmds = mvapich_commands(f.ctx);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].argv, expected);
  EXPECT_TRUE(cmds[0].env.empty());
}

TEST(Runners, MvapichHostfileHoldsEveryHostfileHost) {
  Fixture f(base("mvapich"), {{"node-a", 2}, {"node-b", 2}, {"node-c", 2}});
  EXPECT_EQ(mvapich_hostfile_content(f.ctx), "node-a\nnode-b\nnode-c\n");
}

TEST(Runners, MvapichDefaultsYieldToTheUsersValues) {
  Fixture f(base("mvapich"));
  f.ctx.exports.set("MV2_USE_CUDA", "0");  // from the user's environment or .deepspeed_env
  const std::string joined = shell_join(mvapich_commands(f.ctx)[0].argv);
  EXPECT_NE(joined.find("-env MV2_DEBUG_SHOW_BACKTRACE=1 -env MV2_USE_CUDA=0 -env MV2_SUPPORT_DL=1"), std::string::npos)
      << joined;
  EXPECT_EQ(joined.find("MV2_USE_CUDA=1"), std::string::npos);
}

TEST(Runners, MvapichDefaultExports) {
  const std::vector<std::pair<std::string, std::string>> cuda = {
      {"MV2_SMP_USE_CMA", "0"},     {"MV2_DEBUG_SHOW_BACKTRACE", "1"},   {"MV2_USE_CUDA", "1"},
      {"MV2_SUPPORT_DL", "1"},      {"MV2_ENABLE_AFFINITY", "0"},        {"MV2_INTER_ALLGATHER_TUNING", "5"},
      {"MV2_CUDA_USE_NAIVE", "0"}};
  EXPECT_EQ(mvapich_default_exports({}).items(), cuda);
  EXPECT_EQ(mvapich_default_exports({{"DS_ACCELERATOR", "cuda"}}).items(), cuda);
  // Not a CUDA run: no CUDA-aware MPI asked for (DeepSpeed: only when the accelerator is cuda).
  auto cpu = cuda;
  cpu.erase(cpu.begin() + 2);
  EXPECT_EQ(mvapich_default_exports({{"DS_ACCELERATOR", "cpu"}}).items(), cpu);
}

TEST(Runners, ImpiBindsEachRankWithNumactl) {
  auto o = base("impi");
  o.bind_cores_to_rank = true;
  o.bind_core_list = "0-3,8-11";
  Fixture f(o, {{"h1", 2}, {"h2", 2}});
  f.ctx.exports = {};
  f.ctx.numa = {{0, {0, 1, 2, 3}}, {1, {8, 9, 10, 11}}};
  const Argv expected = {"mpirun", "-ppn", "2", "-genv", "OMP_NUM_THREADS", "4",
                         "-genv", "MASTER_ADDR", "10.0.0.1", "-genv", "MASTER_PORT", "29500",
                         "-genv", "WORLD_SIZE", "4", "-genv", "LOCAL_SIZE", "2", "-genv", "I_MPI_PIN", "0",
                         "-hosts", "h1,h2",
                         "-n", "1", "-env", "RANK", "0", "-env", "LOCAL_RANK", "0",
                         "numactl", "-m", "0", "-C", "0-3", "./train", "--lr", "0.1", ":",
                         "-n", "1", "-env", "RANK", "1", "-env", "LOCAL_RANK", "1",
                         "numactl", "-m", "1", "-C", "8-11", "./train", "--lr", "0.1", ":",
                         "-n", "1", "-env", "RANK", "2", "-env", "LOCAL_RANK", "0",
                         "numactl", "-m", "0", "-C", "0-3", "./train", "--lr", "0.1", ":",
                         "-n", "1", "-env", "RANK", "3", "-env", "LOCAL_RANK", "1",
                         "numactl", "-m", "1", "-C", "8-11", "./train", "--lr", "0.1"};
  EXPECT_EQ(impi_commands(f.ctx)[0].argv, expected);
  // Without a list: the runner machine's cores.
  f.o.bind_core_list.clear();
  f.ctx.default_cores = {0, 1};
  f.ctx.numa = {};
  const std::string joined = shell_join(impi_commands(f.ctx)[0].argv);
  EXPECT_NE(joined.find("-genv OMP_NUM_THREADS 1 "), std::string::npos) << joined;
  EXPECT_NE(joined.find("-env LOCAL_RANK 1 numactl -C 1 ./train"), std::string::npos) << joined;
  f.ctx.environ["KMP_AFFINITY"] = "compact";
  expect_launch_error([&] { impi_commands(f.ctx); }, "KMP_AFFINITY");
}

TEST(Runners, Slurm) {
  auto o = base("slurm");
  o.include = "h1@h2";
  Fixture f(o);
  const Argv expected = {"srun", "-n", "4", "--nodelist=h1,h2",
                         "--export=ALL,NCCL_DEBUG=INFO,MSG=it's two words,MASTER_ADDR=10.0.0.1,MASTER_PORT=29500",
                         "./train", "--lr", "0.1"};
  EXPECT_EQ(slurm_commands(f.ctx)[0].argv, expected);
  auto o2 = base("slurm");
  o2.exclude = "h1:0";
  Fixture f2(o2);
  expect_launch_error([&] { slurm_commands(f2.ctx); }, "selects whole hosts");
}

TEST(Runners, SlurmComment) {
  auto o = base("slurm");
  o.comment = "run 42";
  o.launcher_args = "--qos=high";
  Fixture f(o);
  const auto argv = slurm_commands(f.ctx)[0].argv;
  EXPECT_EQ(Argv(argv.begin(), argv.begin() + 6), (Argv{"srun", "-n", "4", "--qos=high", "--comment", "run 42"}));
}

TEST(Runners, UnknownLauncher) {
  Fixture f(base("torchrun"));
  expect_launch_error([&] { multinode_commands(f.ctx); }, "Unknown launcher torchrun");
}

}  // namespace
}  // namespace deepspeed::launcher
