#include "launcher/launch_plan.h"

#include "fake_system.h"
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
  const std::vector<std::pair<std::string, std::string>> expected = {{"X", "1"}};
  EXPECT_EQ(plan.commands[0].env, expected);
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
}

}  // namespace
}  // namespace deepspeed::launcher
