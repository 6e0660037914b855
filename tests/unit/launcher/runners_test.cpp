#include "launcher/runners/multinode_runner.h"

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
      : o(std::move(options)), ctx{o, pool, expand_pool(pool), {}, "WI", "10.0.0.1", 29500, "/work dir", "/bin/deepspeed", 77} {
    ctx.exports.set("NCCL_DEBUG", "INFO");
    ctx.exports.set("MSG", "it's two words");
  }
};

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
  Fixture f(base("mvapich"));
  const auto argv = mvapich_commands(f.ctx)[0].argv;
  EXPECT_EQ(Argv(argv.begin(), argv.begin() + 7), (Argv{"mpirun", "-np", "4", "-ppn", "2", "--hostfile", kMvapichHostfile}));
  const std::string joined = shell_join(argv);
  EXPECT_NE(joined.find("-env MV2_SMP_USE_CMA=0"), std::string::npos);
  EXPECT_NE(joined.find("-env MV2_USE_CUDA=1"), std::string::npos);
  EXPECT_NE(joined.find("-env MASTER_ADDR=10.0.0.1"), std::string::npos);
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

TEST(Runners, UnknownLauncher) {
  Fixture f(base("torchrun"));
  expect_launch_error([&] { multinode_commands(f.ctx); }, "Unknown launcher torchrun");
}

}  // namespace
}  // namespace deepspeed::launcher
