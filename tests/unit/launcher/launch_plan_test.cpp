#include "launcher/launch_plan.h"

#include <algorithm>
#include <functional>

#include "fake_system.h"
#include "launcher/shell_quote.h"
#include "launcher/world_info.h"

namespace deepspeed::launcher {
namespace {

using testing::expect_launch_error;
using testing::FakeSystem;

RunnerOptions opts(const std::string& hostfile = "/nonexistent/hostfile") {
  RunnerOptions o;
  o.hostfile = hostfile;
  o.program = "./train";
  o.program_args = {"--epochs", "2"};
  return o;
}

TEST(LaunchPlan, NoHostfileNoGpuIsOneLocalSlot) {
  FakeSystem sys;
  const auto plan = plan_launch(opts(), sys);
  EXPECT_EQ(plan.resources, (Resources{{"localhost", {0}}}));
  EXPECT_FALSE(plan.multi_node);
  EXPECT_EQ(plan.launcher, "local");
  EXPECT_EQ(plan.master_addr, "127.0.0.1");
  EXPECT_EQ(plan.master_port, 29500);
  ASSERT_EQ(plan.commands.size(), 1u);
  const std::vector<std::string> expected = {
      "/opt/ds/bin/deepspeed", "--launch", "--world_info=eyJsb2NhbGhvc3QiOiBbMF19", "--node_rank=0",
      "--master_addr=127.0.0.1", "--master_port=29500", "--term_grace=30", "--log_level=info",
      "./train", "--epochs", "2"};
  EXPECT_EQ(plan.commands[0].argv, expected);
  EXPECT_EQ(sys.ssh_calls, 0);
}

TEST(LaunchPlan, NumGpusWithoutGpusGivesCpuSlots) {
  FakeSystem sys;
  auto o = opts();
  o.num_gpus = 2;
  const auto plan = plan_launch(o, sys);
  EXPECT_EQ(plan.resources, (Resources{{"localhost", {0, 1}}}));
  EXPECT_EQ(plan.ranks.size(), 2u);
}

TEST(LaunchPlan, LocalGpusAreTheSlots) {
  FakeSystem sys;
  sys.gpus = 4;
  EXPECT_EQ(plan_launch(opts(), sys).resources, (Resources{{"localhost", {0, 1, 2, 3}}}));
  auto o = opts();
  o.include = "localhost:1,3";
  EXPECT_EQ(plan_launch(o, sys).resources, (Resources{{"localhost", {1, 3}}}));
}

TEST(LaunchPlan, CudaVisibleDevicesBecomesInclude) {
  FakeSystem sys;
  sys.gpus = 4;
  sys.env["CUDA_VISIBLE_DEVICES"] = "2,3";
  auto plan = plan_launch(opts(), sys);
  EXPECT_EQ(plan.resources, (Resources{{"localhost", {2, 3}}}));
  EXPECT_EQ(plan.commands[0].unset_env, std::vector<std::string>{"CUDA_VISIBLE_DEVICES"});
  ASSERT_FALSE(plan.notes.empty());
  EXPECT_NE(plan.notes[0].find("setting --include=localhost:2,3"), std::string::npos);
  // Ignored (with a note) when the user selects resources.
  auto o = opts();
  o.num_gpus = 1;
  plan = plan_launch(o, sys);
  EXPECT_EQ(plan.resources, (Resources{{"localhost", {0}}}));
  EXPECT_NE(plan.notes[0].find("but ignoring it"), std::string::npos);
}

TEST(LaunchPlan, NumNodesOrGpusWithIncludeOrExclude) {
  FakeSystem sys;
  // DeepSpeed's test_num_plus_parser, including --num_nodes 0.
  for (int nodes : {-1, 0, 1}) {
    for (int gpus : {-1, 1}) {
      if (nodes == -1 && gpus == -1) continue;
      for (bool inc : {true, false}) {
        auto o = opts();
        o.num_nodes = nodes;
        o.num_gpus = gpus;
        (inc ? o.include : o.exclude) = "localhost";
        expect_launch_error([&] { plan_launch(o, sys); }, "Cannot specify num_nodes/gpus with include/exclude");
      }
    }
  }
}

TEST(LaunchPlan, IncludeWithExclude) {
  FakeSystem sys;
  auto o = opts();
  o.include = "localhost";
  o.exclude = "localhost:0";
  expect_launch_error([&] { plan_launch(o, sys); }, "mutually exclusive");
}

TEST(LaunchPlan, NumNodesAboveOneWithoutHostfile) {
  FakeSystem sys;
  auto o = opts();
  o.num_nodes = 2;
  expect_launch_error([&] { plan_launch(o, sys); }, "Num nodes is >1 but no extra nodes available via hostfile");
}

TEST(LaunchPlan, HostfileSingleHostRunsLocally) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "worker-0 slots=2\n");
  const auto plan = plan_launch(opts(hf), sys);
  EXPECT_FALSE(plan.multi_node);
  EXPECT_EQ(plan.resources, (Resources{{"worker-0", {0, 1}}}));
  EXPECT_EQ(plan.master_addr, "127.0.0.1");
  EXPECT_EQ(sys.ssh_calls, 0);
}

TEST(LaunchPlan, HostfileErrorsSurface) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "worker-0 slots=2\nworker-0 slots=2\n");
  expect_launch_error([&] { plan_launch(opts(hf), sys); }, ":2: Hostfile contains multiple entries for worker-0");
}

TEST(LaunchPlan, FilterErrorsSurface) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "a slots=2\nb slots=2\n");
  auto o = opts(hf);
  o.include = "c";
  expect_launch_error([&] { plan_launch(o, sys); }, "Hostname 'c' not found in hostfile");
  o.include = "a:2";
  expect_launch_error([&] { plan_launch(o, sys); }, "No slot '2' specified on host 'a'");
  o.include = "";
  o.num_nodes = 3;
  expect_launch_error([&] { plan_launch(o, sys); }, "--num_nodes=3 but only 2 hosts");
  o.num_nodes = -1;
  o.exclude = "a@b";
  expect_launch_error([&] { plan_launch(o, sys); }, "no slots left");
}

TEST(LaunchPlan, MultiNodePdshWithSshCheckAndAddress) {
  FakeSystem sys;
  sys.env = {{"NCCL_DEBUG", "INFO"}, {"HOME", "/root"}};
  sys.cwd_dir.write(".deepspeed_env", "MY_VAR=two words\n");
  auto hf = sys.cwd_dir.write("hostfile", "a slots=2\nb slots=2\n");
  auto o = opts(hf);
  o.num_gpus = 1;
  const auto plan = plan_launch(o, sys);
  EXPECT_TRUE(plan.multi_node);
  EXPECT_EQ(plan.launcher, "pdsh");
  EXPECT_EQ(plan.master_addr, "10.1.2.3");
  EXPECT_EQ(sys.ssh_calls, 2);
  EXPECT_EQ(plan.resources, (Resources{{"a", {0}}, {"b", {0}}}));
  ASSERT_NE(plan.exports.find("MY_VAR"), nullptr);
  EXPECT_EQ(*plan.exports.find("NCCL_DEBUG"), "INFO");
  EXPECT_EQ(plan.exports.find("HOME"), nullptr);
  ASSERT_EQ(plan.commands.size(), 1u);
  const auto& argv = plan.commands[0].argv;
  EXPECT_EQ(argv[0], "pdsh");
  EXPECT_EQ(argv[5], "a,b");
  EXPECT_NE(argv.back().find("export MY_VAR='two words'; "), std::string::npos);
  EXPECT_NE(argv.back().find("--node_rank=%n"), std::string::npos);
  EXPECT_EQ(plan.ranks.size(), 2u);
}

TEST(LaunchPlan, PdshPlanCarriesTheKillCommand) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "a slots=1\nb slots=1\n");
  const auto plan = plan_launch(opts(hf), sys);
  ASSERT_TRUE(plan.cleanup.has_value());
  const std::string wi = encode_world_info({{"a", {0}}, {"b", {0}}});
  const std::vector<std::string> expected = {
      "pdsh", "-S", "-f", "1024", "-w", "a,b",
      "pkill -f '[/]opt/ds/bin/deepspeed --launch --world_info=" + wi +
          " --node_rank=[0-9]+ --master_addr=10\\.1\\.2\\.3 --master_port=29500 '"};
  EXPECT_EQ(plan.cleanup->argv, expected);
  EXPECT_EQ(plan.cleanup->env, plan.commands[0].env);
  EXPECT_TRUE(plan.commands[0].interrupt_before_term);
  // The other backends have nothing to clean up after (mpirun/srun/ssh stop their ranks).
  for (const std::string l : {"ssh", "openmpi", "slurm"}) {
    auto o = opts(hf);
    o.launcher = l;
    EXPECT_FALSE(plan_launch(o, sys).cleanup.has_value()) << l;
  }
}

TEST(LaunchPlan, MvapichNeedsMvapich2Gdr) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "a slots=2\nb slots=2\n");
  auto o = opts(hf);
  o.launcher = "mvapich";
  const auto plan = plan_launch(o, sys);  // mpiname says MVAPICH2-GDR
  ASSERT_EQ(plan.files.size(), 1u);
  EXPECT_EQ(plan.files[0].path, "/tmp/deepspeed_mvapich_hostfile");
  EXPECT_EQ(plan.files[0].content, "a\nb\n");
  EXPECT_FALSE(plan.cleanup.has_value());

  sys.outputs["mpiname"] = {0, "MVAPICH2 2.3.7\n"};
  expect_launch_error([&] { plan_launch(o, sys); },
                      "launcher 'mvapich' not installed: expected MVAPICH2-GDR as return for mpiname but received "
                      "'MVAPICH2 2.3.7'");
  sys.outputs["mpiname"] = {1, ""};
  expect_launch_error([&] { plan_launch(o, sys); }, "`mpiname` failed with exit code 1");
  sys.programs.erase("mpiname");
  expect_launch_error([&] { plan_launch(o, sys); },
                      "launcher 'mvapich' not installed (mpiname not found in PATH; mvapich is not installed properly)");
}

TEST(LaunchPlan, UnsupportedFlagCombinationsNameTheFlag) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "a slots=1\nb slots=1\n");
  struct Case {
    std::string launcher;
    std::function<void(RunnerOptions&)> set;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"openmpi", [](RunnerOptions& o) { o.save_pid = true; },
       "--save_pid is not supported with --launcher=openmpi: mpirun starts the ranks"},
      {"slurm", [](RunnerOptions& o) { o.enable_each_rank_log = "/logs"; },
       "--enable_each_rank_log is not supported with --launcher=slurm: srun starts the ranks"},
      {"mpich", [](RunnerOptions& o) { o.bind_cores_to_rank = true; },
       "--bind_cores_to_rank is not supported with --launcher=mpich"},
      {"mvapich", [](RunnerOptions& o) { o.venv_script = "/v.sh"; },
       "--venv_script is not supported with --launcher=mvapich"},
      {"openmpi", [](RunnerOptions& o) { o.ssh_port = 2222; },
       "--ssh_port is not supported with --launcher=openmpi: mpirun makes its own connections (give its option in "
       "--launcher_args, e.g. --mca plm_rsh_args '-p 2222')"},
      {"pdsh", [](RunnerOptions& o) { o.node_rank = 1; }, "--node_rank=1 is only used with --no_ssh"},
      {"pdsh", [](RunnerOptions& o) { o.bind_core_list = "0-3"; },
       "--bind_core_list is only used with --bind_cores_to_rank"},
      {"pdsh", [](RunnerOptions& o) { o.comment = "c"; }, "--comment is only passed to srun"},
  };
  for (const auto& c : cases) {
    auto o = opts(hf);
    o.launcher = c.launcher;
    c.set(o);
    expect_launch_error([&] { plan_launch(o, sys); }, c.message);
  }
  // Supported: impi binds cores, pdsh/ssh take all of them, slurm takes --comment.
  auto o = opts(hf);
  o.launcher = "impi";
  o.bind_cores_to_rank = true;
  EXPECT_NO_THROW(plan_launch(o, sys));
  o = opts(hf);
  o.launcher = "ssh";
  o.save_pid = o.bind_cores_to_rank = true;
  o.enable_each_rank_log = "/logs";
  o.venv_script = "/v.sh";
  o.ssh_port = 2222;
  EXPECT_NO_THROW(plan_launch(o, sys));
  o = opts(hf);
  o.launcher = "slurm";
  o.comment = "c";
  EXPECT_NO_THROW(plan_launch(o, sys));
}

TEST(LaunchPlan, RemoteLaunchFlagsOfASingleNodeRunAreNoted) {
  FakeSystem sys;
  auto o = opts();
  o.launcher_args = "-R ssh";
  o.venv_script = "/v.sh";
  o.ssh_port = 2222;
  const auto plan = plan_launch(o, sys);
  const std::vector<std::string> expected = {
      "--launcher_args is not used: this is a single-node run (no remote launch)",
      "--venv_script is not used: this is a single-node run (no remote launch)",
      "--ssh_port is not used: this is a single-node run (no remote launch)"};
  EXPECT_EQ(plan.notes, expected);
}

TEST(LaunchPlan, ImpiBindingUsesThisMachinesCoresAndNuma) {
  FakeSystem sys;
  sys.cores = {0, 1, 2, 3};
  sys.numa = {{0, {0, 1}}, {1, {2, 3}}};
  auto hf = sys.cwd_dir.write("hostfile", "a slots=2\nb slots=2\n");
  auto o = opts(hf);
  o.launcher = "impi";
  o.bind_cores_to_rank = true;
  const std::string joined = shell_join(plan_launch(o, sys).commands[0].argv);
  EXPECT_NE(joined.find("-env RANK 3 -env LOCAL_RANK 1 numactl -m 1 -C 2-3 ./train"), std::string::npos) << joined;
}

TEST(LaunchPlan, SshUnreachable) {
  FakeSystem sys;
  sys.reachable = false;
  auto hf = sys.cwd_dir.write("hostfile", "a slots=1\nb slots=1\n");
  expect_launch_error([&] { plan_launch(opts(hf), sys); }, "host=a was not reachable via ssh");
  auto o = opts(hf);
  o.no_ssh_check = true;
  o.master_addr = "10.0.0.9";
  EXPECT_EQ(plan_launch(o, sys).master_addr, "10.0.0.9");
}

TEST(LaunchPlan, BackendNotInstalled) {
  FakeSystem sys;
  sys.programs.clear();
  auto hf = sys.cwd_dir.write("hostfile", "a slots=1\nb slots=1\n");
  expect_launch_error([&] { plan_launch(opts(hf), sys); }, "launcher 'pdsh' not installed");
  auto o = opts(hf);
  o.dry_run = true;  // a dry run still shows the commands
  EXPECT_EQ(plan_launch(o, sys).commands.size(), 1u);
}

TEST(LaunchPlan, ForceMultiOnOneHost) {
  FakeSystem sys;
  auto o = opts();
  o.force_multi = true;
  o.launcher = "ssh";
  o.master_addr = "127.0.0.1";
  const auto plan = plan_launch(o, sys);
  EXPECT_TRUE(plan.multi_node);
  ASSERT_EQ(plan.commands.size(), 1u);
  EXPECT_EQ(plan.commands[0].host, "localhost");
}

TEST(LaunchPlan, NoSshLaunchesOneNode) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "a slots=1\nb slots=2\n");
  auto o = opts(hf);
  o.no_ssh = true;
  o.node_rank = 1;
  o.master_addr = "10.0.0.1";
  const auto plan = plan_launch(o, sys);
  EXPECT_FALSE(plan.multi_node);
  EXPECT_EQ(plan.ranks.size(), 2u);
  EXPECT_EQ(plan.ranks[0].rank, 1);
  o.node_rank = 2;
  expect_launch_error([&] { plan_launch(o, sys); }, "--no_ssh needs --node_rank in [0, 2)");
}

TEST(LaunchPlan, DeepspeedEnvAppliesToSingleNodeToo) {
  FakeSystem sys;
  sys.cwd_dir.write(".deepspeed_env", "X=1\n");
  const auto plan = plan_launch(opts(), sys);
  const std::vector<std::pair<std::string, std::string>> expected = {{"X", "1"}, {"DEEPSPEED_RUN_ID", sys.run_id}};
  EXPECT_EQ(plan.commands[0].env, expected);
}

// Every job gets a run id of its own, carried to every rank (locally through the node
// launcher's environment, to other nodes with the exports), so that the ranks of two jobs on
// one master port never pair; one the user set (environment or .deepspeed_env) is kept.
TEST(LaunchPlan, RunIdIsNewForEachJobAndReachesEveryRank) {
  FakeSystem sys;
  auto local = plan_launch(opts(), sys);
  EXPECT_EQ(local.run_id, sys.run_id);
  EXPECT_EQ(*local.exports.find("DEEPSPEED_RUN_ID"), sys.run_id);
  const std::pair<std::string, std::string> id = {"DEEPSPEED_RUN_ID", sys.run_id};
  EXPECT_NE(std::find(local.commands[0].env.begin(), local.commands[0].env.end(), id), local.commands[0].env.end());

  auto hf = sys.cwd_dir.write("hostfile", "a slots=1\nb slots=1\n");
  for (const std::string l : {"pdsh", "ssh", "openmpi", "slurm"}) {
    auto o = opts(hf);
    o.launcher = l;
    const auto plan = plan_launch(o, sys);
    EXPECT_EQ(*plan.exports.find("DEEPSPEED_RUN_ID"), sys.run_id) << l;
    EXPECT_NE(shell_join(plan.commands[0].argv).find("DEEPSPEED_RUN_ID=" + sys.run_id), std::string::npos)
        << l << ": " << shell_join(plan.commands[0].argv);
  }

  sys.env["DEEPSPEED_RUN_ID"] = "mine";
  EXPECT_EQ(plan_launch(opts(), sys).run_id, "mine");
  sys.cwd_dir.write(".deepspeed_env", "DEEPSPEED_RUN_ID=from-file\n");
  EXPECT_EQ(plan_launch(opts(), sys).run_id, "from-file");
}

// --no_ssh starts one node per runner: a run id made here would differ on every node, so
// only one the user gives is used.
TEST(LaunchPlan, NoSshUsesOnlyAGivenRunId) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "a slots=1\nb slots=1\n");
  auto o = opts(hf);
  o.no_ssh = true;
  o.node_rank = 1;
  o.master_addr = "10.0.0.1";
  auto plan = plan_launch(o, sys);
  EXPECT_EQ(plan.run_id, "");
  EXPECT_EQ(plan.exports.find("DEEPSPEED_RUN_ID"), nullptr);
  sys.env["DEEPSPEED_RUN_ID"] = "shared";
  plan = plan_launch(o, sys);
  EXPECT_EQ(plan.run_id, "shared");
  EXPECT_EQ(*plan.exports.find("DEEPSPEED_RUN_ID"), "shared");
}

TEST(LaunchPlan, DryRunJson) {
  FakeSystem sys;
  auto o = opts();
  o.num_gpus = 2;
  o.dry_run = true;
  const auto plan = plan_launch(o, sys);
  const auto j = plan_to_json(plan, o, sys);
  EXPECT_EQ(j["world_info"], "eyJsb2NhbGhvc3QiOiBbMCwgMV19");
  EXPECT_EQ(j["resources"]["localhost"], nlohmann::ordered_json::array({0, 1}));
  EXPECT_EQ(j["master_port"], 29500);
  ASSERT_EQ(j["ranks"].size(), 2u);
  EXPECT_EQ(j["ranks"][1]["env"]["RANK"], "1");
  EXPECT_EQ(j["ranks"][1]["command"], nlohmann::ordered_json::array({"./train", "--local_rank=1", "--epochs", "2"}));
  EXPECT_EQ(j["commands"][0]["argv"][1], "--launch");
  EXPECT_FALSE(j.contains("cleanup"));
}

TEST(LaunchPlan, DryRunJsonShowsTheKillCommandAndFiles) {
  FakeSystem sys;
  auto hf = sys.cwd_dir.write("hostfile", "a slots=1\nb slots=1\n");
  auto o = opts(hf);
  o.dry_run = true;
  auto j = plan_to_json(plan_launch(o, sys), o, sys);
  ASSERT_TRUE(j.contains("cleanup"));
  EXPECT_EQ(j["cleanup"]["argv"][0], "pdsh");
  EXPECT_EQ(j["cleanup"]["shell"].get<std::string>().rfind("pdsh -S -f 1024 -w a,b 'pkill -f '\\''[/]opt/ds/bin/deepspeed", 0), 0u)
      << j["cleanup"]["shell"];
  o.launcher = "mvapich";
  j = plan_to_json(plan_launch(o, sys), o, sys);
  EXPECT_EQ(j["files"][0]["path"], "/tmp/deepspeed_mvapich_hostfile");
  EXPECT_EQ(j["files"][0]["content"], "a\nb\n");
}

TEST(LaunchPlan, DryRunRanksShowNumaBinding) {
  FakeSystem sys;
  sys.programs.insert("numactl");
  sys.numa = {{0, {0, 1}}, {1, {2, 3}}};
  auto o = opts();
  o.num_gpus = 2;
  o.bind_cores_to_rank = true;
  o.bind_core_list = "0-3";
  const auto j = plan_to_json(plan_launch(o, sys), o, sys);
  EXPECT_EQ(j["ranks"][1]["command"],
            nlohmann::ordered_json::array({"numactl", "-m", "1", "-C", "2-3", "./train", "--local_rank=1", "--epochs", "2"}));
  EXPECT_EQ(j["ranks"][1]["env"]["OMP_NUM_THREADS"], "2");
}

}  // namespace
}  // namespace deepspeed::launcher
