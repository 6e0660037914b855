#include "launcher/pod_env.h"

#include <sstream>

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

using Env = std::vector<std::pair<std::string, std::string>>;

TEST(PodEnv, OnlyTheFcTaskLinesAsLaunchPyReadsThem) {
  std::istringstream in(
      "export PATH=/usr/bin:${PATH}\n"
      "export FC_TASKROLE_NAME=worker\n"
      "export NCCL_DEBUG=INFO\n"
      "export FC_TASK_INDEX=3   \n"
      "  export FC_TASK_INDEX=9\n"          // not at the start of the line: skipped
      "export FC_TASK_INDEX_EXTRA=\"q\"\n"  // a prefix match, value verbatim
      "FC_TASK_INDEX=7\n");
  EXPECT_EQ(parse_pod_env(in, "pod.env"),
            (Env{{"FC_TASKROLE_NAME", "worker"}, {"FC_TASK_INDEX", "3"}, {"FC_TASK_INDEX_EXTRA", "\"q\""}}));
}

TEST(PodEnv, ACountedLineWithoutOneEqualsIsAnError) {
  std::istringstream in("export FC_TASKROLE_NAME=a\nexport FC_TASK_INDEX\n");
  testing::expect_launch_error([&] { parse_pod_env(in, "/dlts-runtime/env/pod.env"); },
                               "/dlts-runtime/env/pod.env:2: expected `export NAME=VALUE` with one '='");
  std::istringstream in2("export FC_TASK_INDEX=1=2\n");
  testing::expect_launch_error([&] { parse_pod_env(in2, "f"); }, "f:1:");
}

TEST(PodEnv, MissingFileIsNothing) {
  EXPECT_TRUE(read_pod_env("/nonexistent/pod.env").empty());
  testing::TempDir dir;
  const auto path = dir.write("pod.env", "export FC_TASK_INDEX=0\n");
  EXPECT_EQ(read_pod_env(path), (Env{{"FC_TASK_INDEX", "0"}}));
}

}  // namespace
}  // namespace deepspeed::launcher
