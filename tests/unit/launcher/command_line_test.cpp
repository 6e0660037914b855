#include "launcher/command_line.h"

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

using testing::expect_launch_error;
using Args = std::vector<std::string>;

TEST(CommandLine, RunnerFlagsAndPassThrough) {
  const auto cl = parse_command_line({"-H", "hf", "-i", "w-2:0@w-3:0,1", "--master_port=1234", "--launcher", "OpenMPI",
                                      "--num_accelerators", "2", "--ssh_port", "22", "--force_multi", "./prog",
                                      "--deepspeed_config", "x.json", "-i", "--num_gpus=9"});
  ASSERT_EQ(cl.mode, Mode::kRunner);
  const auto& o = cl.runner;
  EXPECT_EQ(o.hostfile, "hf");
  EXPECT_TRUE(o.hostfile_given);
  EXPECT_EQ(o.include, "w-2:0@w-3:0,1");
  EXPECT_EQ(o.master_port, 1234);
  EXPECT_EQ(o.launcher, "openmpi");
  EXPECT_EQ(o.num_gpus, 2);
  EXPECT_EQ(o.ssh_port, 22);
  EXPECT_TRUE(o.force_multi);
  EXPECT_EQ(o.program, "./prog");
  EXPECT_EQ(o.program_args, (Args{"--deepspeed_config", "x.json", "-i", "--num_gpus=9"}));
}

TEST(CommandLine, Defaults) {
  const auto o = parse_command_line({"prog"}).runner;
  EXPECT_EQ(o.hostfile, "/job/hostfile");
  EXPECT_FALSE(o.hostfile_given);
  EXPECT_EQ(o.master_port, 29500);
  EXPECT_EQ(o.launcher, "pdsh");
  EXPECT_EQ(o.num_nodes, -1);
  EXPECT_EQ(o.num_gpus, -1);
  EXPECT_EQ(o.log_level, LogLevel::kInfo);
}

TEST(CommandLine, Errors) {
  expect_launch_error([] { parse_command_line({}); }, "no program given");
  expect_launch_error([] { parse_command_line({"--num_gpus", "2"}); }, "no program given");
  expect_launch_error([] { parse_command_line({"--frobnicate", "prog"}); }, "unrecognized flag '--frobnicate'");
  expect_launch_error([] { parse_command_line({"--autotuning", "run", "prog"}); }, "--autotuning is not supported");
  expect_launch_error([] { parse_command_line({"--elastic_training", "prog"}); }, "--elastic_training is not supported");
  expect_launch_error([] { parse_command_line({"--launcher", "torchrun", "prog"}); }, "Unknown launcher torchrun");
  expect_launch_error([] { parse_command_line({"--master_port", "70000", "prog"}); }, "--master_port");
  expect_launch_error([] { parse_command_line({"--num_gpus", "two", "prog"}); }, "--num_gpus");
  expect_launch_error([] { parse_command_line({"--log_level", "loud", "prog"}); }, "--log_level");
}

TEST(CommandLine, SlurmComment) {
  EXPECT_EQ(parse_command_line({"--comment", "run 42", "prog"}).runner.comment, "run 42");
  EXPECT_EQ(parse_command_line({"prog"}).runner.comment, "");
}

TEST(CommandLine, ElasticFlagsAreRefusedByName) {
  expect_launch_error([] { parse_command_line({"--min_elastic_nodes", "1", "prog"}); },
                      "--min_elastic_nodes is not supported: elastic training is not supported by deepspeed-cpp");
  expect_launch_error([] { parse_command_line({"--max_elastic_nodes=2", "prog"}); }, "--max_elastic_nodes is not supported");
}

TEST(CommandLine, QuietAndHelp) {
  EXPECT_EQ(parse_command_line({"-q", "prog"}).runner.log_level, LogLevel::kError);
  const auto help = parse_command_line({"--help"});
  EXPECT_EQ(help.mode, Mode::kHelp);
  EXPECT_NE(help.help_text.find("--hostfile"), std::string::npos);
  EXPECT_EQ(help.help_text.find("--autotuning"), std::string::npos);
}

TEST(CommandLine, LaunchMode) {
  const auto cl = parse_command_line({"--launch", "--world_info=eyJsb2NhbGhvc3QiOiBbMCwgMV19", "--node_rank=0",
                                      "--master_addr=1.2.3.4", "--master_port=99", "--no_local_rank",
                                      "--save_pid=12", "--term_grace=0.5", "--watch_stdin", "prog", "a", "--b"});
  ASSERT_EQ(cl.mode, Mode::kLaunch);
  const auto& o = cl.launch;
  EXPECT_EQ(o.world, (Resources{{"localhost", {0, 1}}}));
  EXPECT_EQ(o.master_addr, "1.2.3.4");
  EXPECT_EQ(o.master_port, 99);
  EXPECT_TRUE(o.no_local_rank);
  EXPECT_EQ(o.save_pid, 12);
  EXPECT_EQ(o.term_grace.count(), 500);
  EXPECT_TRUE(o.watch_stdin);
  EXPECT_EQ(o.program, "prog");
  EXPECT_EQ(o.program_args, (Args{"a", "--b"}));
  expect_launch_error([] { parse_command_line({"--launch", "prog"}); }, "--world_info");
  expect_launch_error([] { parse_command_line({"--launch", "--world_info=None", "prog"}); }, "world_info can not be None");
}

TEST(CommandLine, MpiHelper) {
  const auto cl = parse_command_line({"--mpi_helper=mpich", "prog", "x"});
  EXPECT_EQ(cl.mode, Mode::kMpiHelper);
  EXPECT_EQ(cl.mpi_flavour, "mpich");
  EXPECT_EQ(cl.program_argv, (Args{"prog", "x"}));
}

TEST(MpiRankEnvironment, Mpich) {
  const std::vector<std::pair<std::string, std::string>> expected = {{"RANK", "3"}, {"LOCAL_RANK", "1"}};
  EXPECT_EQ(mpi_rank_environment("mpich", {{"PMI_RANK", "3"}, {"MPI_LOCALRANKID", "1"}}), expected);
  EXPECT_EQ(mpi_rank_environment("mpich", {{"PMIX_RANK", "3"}, {"PMI_RANK", "3"}, {"PALS_LOCAL_RANKID", "1"}}), expected);
  expect_launch_error([] { mpi_rank_environment("mpich", {{"PMIX_RANK", "3"}, {"PMI_RANK", "2"}, {"MPI_LOCALRANKID", "1"}}); },
                      "rank number doesn't match!");
  expect_launch_error([] { mpi_rank_environment("mpich", {{"MPI_LOCALRANKID", "1"}}); }, "rank number is not in current env!");
}

}  // namespace
}  // namespace deepspeed::launcher
