// Rank discovery from the variables each kind of launcher sets.
#include <gtest/gtest.h>

#include <deepspeed/comm.h>
#include <deepspeed/errors.h>

using deepspeed::CommError;
using deepspeed::comm::discover_environment;

TEST(EnvironmentDiscovery, NoVariablesIsASingleProcess) {
  auto e = discover_environment({});
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_EQ(e.source, "none");
  EXPECT_EQ(e.master_port, 29500);
}

TEST(EnvironmentDiscovery, DeepSpeedLauncherVariables) {
  auto e = discover_environment({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_SIZE", "2"},
                                 {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29600"}});
  EXPECT_EQ(e.source, "deepspeed");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.1");
  EXPECT_EQ(e.master_port, 29600);
}

TEST(EnvironmentDiscovery, OpenMpiVariables) {
  auto e = discover_environment({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                                 {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
  EXPECT_EQ(e.source, "openmpi");
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 2);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "127.0.0.1");  // every rank on this host: unambiguous
}

TEST(EnvironmentDiscovery, MpichAndMvapichVariables) {
  auto m = discover_environment({{"PMI_RANK", "2"}, {"PMI_SIZE", "3"}, {"MPI_LOCALRANKID", "2"},
                                 {"MASTER_ADDR", "h0"}});
  EXPECT_EQ(m.source, "mpich");
  EXPECT_EQ(m.rank, 2);
  EXPECT_EQ(m.world_size, 3);
  EXPECT_EQ(m.local_rank, 2);
  auto v = discover_environment({{"MV2_COMM_WORLD_RANK", "0"}, {"MV2_COMM_WORLD_SIZE", "2"}});
  EXPECT_EQ(v.source, "mvapich");
  EXPECT_EQ(v.world_size, 2);
}

TEST(EnvironmentDiscovery, SlurmTakesTheFirstNodeAsMaster) {
  auto e = discover_environment({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                 {"SLURM_JOB_NODELIST", "gpu[03-04,07],login1"}});
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.master_addr, "gpu03");
}

TEST(EnvironmentDiscovery, LauncherVariablesWinOverMpi) {
  auto e = discover_environment({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"OMPI_COMM_WORLD_RANK", "1"},
                                 {"OMPI_COMM_WORLD_SIZE", "2"}});
  EXPECT_EQ(e.source, "deepspeed");
}

TEST(EnvironmentDiscovery, ErrorsNameTheVariable) {
  auto expect_error = [](std::map<std::string, std::string> env, const std::string& needle) {
    try {
      discover_environment(env);
      FAIL() << "expected an error mentioning " << needle;
    } catch (const CommError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK='x'");
  expect_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}}, "not below world size");
  expect_error({{"RANK", "0"}}, "WORLD_SIZE is not");
  expect_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}}, "MASTER_ADDR");
  expect_error({{"MASTER_PORT", "70000"}}, "MASTER_PORT");
  expect_error({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}},
               "MASTER_ADDR");
}

// DEEPSPEED_RUN_ID (the launcher's job identity) is read from any launcher's variables and
// must stay one component of the store's key prefix.
TEST(EnvironmentDiscovery, RunIdFromTheLauncher) {
  EXPECT_EQ(discover_environment({}).run_id, "");
  auto e = discover_environment({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"},
                                 {"DEEPSPEED_RUN_ID", "job-3f2a.9_b"}});
  EXPECT_EQ(e.run_id, "job-3f2a.9_b");
  EXPECT_EQ(discover_environment({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "1"},
                                  {"DEEPSPEED_RUN_ID", "x1"}})
                .run_id,
            "x1");
  for (const std::string& bad : std::vector<std::string>{"a/b", "two words", std::string(129, 'a')}) {
    try {
      discover_environment({{"DEEPSPEED_RUN_ID", bad}});
      ADD_FAILURE() << "accepted DEEPSPEED_RUN_ID=" << bad;
    } catch (const CommError& err) {
      EXPECT_NE(std::string(err.what()).find("DEEPSPEED_RUN_ID='" + bad + "': expected at most 128 letters"),
                std::string::npos)
          << err.what();
    }
  }
}
