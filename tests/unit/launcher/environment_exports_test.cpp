#include "launcher/environment_exports.h"

#include <sstream>

#include "launcher/shell_quote.h"
#include "launcher/system_probe.h"
#include "test_util.h"

namespace deepspeed::launcher {
namespace {

using testing::TempDir;

TEST(DeepspeedEnv, ParsesKeyValueSplitAtFirstEquals) {
  std::istringstream in("A=1\nB = two words \nC=x=y\n\n# comment\nD=\n");
  EnvList out;
  parse_deepspeed_env(in, "f", out);
  const std::vector<std::pair<std::string, std::string>> expected = {{"A", "1"}, {"B", "two words"}, {"C", "x=y"}, {"D", ""}};
  EXPECT_EQ(out.items(), expected);
}

TEST(DeepspeedEnv, LineWithoutEqualsNamesFileAndLine) {
  std::istringstream in("A=1\nNOPE\n");
  EnvList out;
  testing::expect_launch_error([&] { parse_deepspeed_env(in, "/x/.deepspeed_env", out); },
                               "/x/.deepspeed_env:2: expected KEY=VALUE, got 'NOPE'");
  std::istringstream in2("=1\n");
  testing::expect_launch_error([&] { parse_deepspeed_env(in2, "f", out); }, "f:1: empty variable name");
}

TEST(DeepspeedEnv, HomeThenCwdLaterOverrides) {
  TempDir home, cwd;
  home.write(".deepspeed_env", "A=home\nB=home\n");
  cwd.write(".deepspeed_env", "B=cwd\nC=cwd\n");
  const auto env = read_deepspeed_env_files({}, home.path().string(), cwd.path().string());
  const std::vector<std::pair<std::string, std::string>> expected = {{"A", "home"}, {"B", "cwd"}, {"C", "cwd"}};
  EXPECT_EQ(env.items(), expected);
}

TEST(DeepspeedEnv, SameDirectoryReadOnce) {
  TempDir dir;
  dir.write(".deepspeed_env", "A=1\n");
  const auto env = read_deepspeed_env_files({}, dir.path().string(), dir.path().string());
  EXPECT_EQ(env.items().size(), 1u);
}

TEST(DeepspeedEnv, DsEnvFileOverridesTheName) {
  TempDir home, cwd;
  cwd.write(".deepspeed_env", "A=default\n");
  cwd.write("my_env", "A=custom\n");
  auto env = read_deepspeed_env_files({{"DS_ENV_FILE", "my_env"}}, home.path().string(), cwd.path().string());
  ASSERT_NE(env.find("A"), nullptr);
  EXPECT_EQ(*env.find("A"), "custom");
  // An absolute path.
  const auto abs = home.write("abs_env", "A=absolute\n");
  env = read_deepspeed_env_files({{"DS_ENV_FILE", abs}}, home.path().string(), cwd.path().string());
  EXPECT_EQ(*env.find("A"), "absolute");
}

TEST(DeepspeedEnv, DsEnvFileRelativePathIsLookedUpInHomeThenCwd) {
  TempDir home, cwd;
  std::filesystem::create_directory(home.path() / "conf");
  std::filesystem::create_directory(cwd.path() / "conf");
  home.write("conf/env", "A=home\nB=home\n");
  cwd.write("conf/env", "B=cwd\n");
  cwd.write(".deepspeed_env", "C=not read\n");
  const auto env = read_deepspeed_env_files({{"DS_ENV_FILE", "conf/env"}}, home.path().string(), cwd.path().string());
  const std::vector<std::pair<std::string, std::string>> expected = {{"A", "home"}, {"B", "cwd"}};
  EXPECT_EQ(env.items(), expected);
}

TEST(DeepspeedEnv, EmptyDsEnvFileReadsNothing) {
  // DeepSpeed: os.getenv("DS_ENV_FILE", ".deepspeed_env") is "" -> os.path.join(dir, "") is a
  // directory, never a file.
  TempDir home, cwd;
  home.write(".deepspeed_env", "A=1\n");
  cwd.write(".deepspeed_env", "B=1\n");
  EXPECT_TRUE(read_deepspeed_env_files({{"DS_ENV_FILE", ""}}, home.path().string(), cwd.path().string()).empty());
}

TEST(DeepspeedEnv, NoFilesGivesEmpty) {
  TempDir home, cwd;
  EXPECT_TRUE(read_deepspeed_env_files({}, home.path().string(), cwd.path().string()).empty());
}

TEST(ExportedEnvironment, PrefixesAndPythonPath) {
  const Environ environ = {{"NCCL_DEBUG", "INFO"}, {"NCCL_IB_HCA", "mlx5"}, {"UCX_TLS", "tcp"},
                           {"PYTHONPATH", "/lib"}, {"HOME", "/root"}, {"MY_NCCL", "no"},
                           {"AZUREML_RUN_ID", "r1"}, {"MLFLOW_X", " padded "}, {"PATH", "/bin"}};
  const auto out = exported_environment(environ, "/work");
  EXPECT_EQ(*out.find("NCCL_DEBUG"), "INFO");
  EXPECT_EQ(*out.find("NCCL_IB_HCA"), "mlx5");
  EXPECT_EQ(*out.find("UCX_TLS"), "tcp");
  EXPECT_EQ(*out.find("AZUREML_RUN_ID"), "r1");
  EXPECT_EQ(*out.find("MLFLOW_X"), "padded");
  EXPECT_EQ(*out.find("PYTHONPATH"), "/work:/lib");
  EXPECT_EQ(out.find("HOME"), nullptr);
  EXPECT_EQ(out.find("MY_NCCL"), nullptr);  // a prefix, not a substring
  EXPECT_EQ(out.find("PATH"), nullptr);
}

TEST(ExportedEnvironment, AiscJobExcludesIbHcaAndUcxDevices) {
  const Environ environ = {{"AISC_JOB_NAME", "j"}, {"NCCL_IB_HCA", "mlx5"}, {"UCX_NET_DEVICES", "d"}, {"NCCL_X", "1"}};
  const auto out = exported_environment(environ, "/w");
  EXPECT_EQ(out.find("NCCL_IB_HCA"), nullptr);
  EXPECT_EQ(out.find("UCX_NET_DEVICES"), nullptr);
  EXPECT_NE(out.find("NCCL_X"), nullptr);
  EXPECT_EQ(*out.find("PYTHONPATH"), "/w");
}

TEST(ExportedEnvironment, QuotedExportsSurviveARemoteShell) {
  // What pdsh/ssh send: `export K=V; ...` with shell_quote'd values.
  TempDir cwd;
  cwd.write(".deepspeed_env", "SPACES=a b  c\nQUOTES=it's \"quoted\"\nPARENS=64(x2)\nDOLLAR=$HOME\n");
  const auto env = read_deepspeed_env_files({}, "", cwd.path().string());
  std::string script;
  for (const auto& [k, v] : env.items()) script += "export " + k + "=" + shell_quote(v) + "; ";
  script += "printf '%s|%s|%s|%s' \"$SPACES\" \"$QUOTES\" \"$PARENS\" \"$DOLLAR\"";
  std::string out;
  ASSERT_EQ(run_and_capture({"/bin/sh", "-c", script}, out), 0);
  EXPECT_EQ(out, "a b  c|it's \"quoted\"|64(x2)|$HOME");
}

}  // namespace
}  // namespace deepspeed::launcher
