// The ds_config tool as a user runs it: exit codes, stdout, stderr.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

const std::string kTool = DS_BINARY_DIR "/bin/ds_config";

struct ToolRun {
  int exit_code;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class DsConfigTool : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTool)) GTEST_SKIP() << kTool << " is not built";
    dir_ = fs::temp_directory_path() /
           ("ds_config_tool_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }

  ToolRun run_tool(const std::string& args) {
    const fs::path out = dir_ / "stdout";
    const fs::path err = dir_ / "stderr";
    const std::string command = kTool + " " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    return ToolRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  }

  fs::path dir_;
};

TEST_F(DsConfigTool, PrintsTheResolvedConfig) {
  const auto config = write("ds_config.json", R"({
    // the global batch
    "train_batch_size": 16,
    "fp16": {"enabled": true}
  })");
  const ToolRun r = run_tool(config.string() + " --world_size 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["train_micro_batch_size_per_gpu"], 4);
  EXPECT_EQ(j["gradient_accumulation_steps"], 1);
  EXPECT_EQ(j["steps_per_print"], 10);
  EXPECT_EQ(j["fp16"]["loss_scale_window"], 1000);
  EXPECT_EQ(j["zero_optimization"]["stage"], 0);
}

TEST_F(DsConfigTool, WarningsGoToStderr) {
  const auto config = write("c.json", "{\"train_batch_size\": 2,\n \"stepsperprint\": 5}");
  const ToolRun r = run_tool(config.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("ds_config: warning: stepsperprint: unknown top-level key, ignored (the nearest known key is "
                       "\"steps_per_print\")"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(nlohmann::json::accept(r.out)) << r.out;
}

TEST_F(DsConfigTool, InvalidConfigExitsOneWithTheError) {
  const auto config = write("bad.json", "{\"train_batch_size\": 10, \"train_micro_batch_size_per_gpu\": 3}");
  const ToolRun r = run_tool(config.string() + " --world_size 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("ds_config: error: train_batch_size: Check batch related parameters."), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("bad.json:1:2"), std::string::npos) << r.err;
}

TEST_F(DsConfigTool, SyntaxErrorExitsOne) {
  const auto config = write("syntax.json", "{\n  \"train_batch_size\": 8,\n}\n");
  const ToolRun r = run_tool(config.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("syntax.json:3:1: syntax error"), std::string::npos) << r.err;
}

TEST_F(DsConfigTool, MissingFileExitsOne) {
  const ToolRun r = run_tool((dir_ / "nope.json").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Expected a string path to an existing deepspeed config"), std::string::npos) << r.err;
}

TEST_F(DsConfigTool, BadCommandLineIsAnError) {
  EXPECT_NE(run_tool("").exit_code, 0);
  const auto config = write("c.json", R"({"train_batch_size": 2})");
  EXPECT_NE(run_tool(config.string() + " --world_size 0").exit_code, 0);
  EXPECT_NE(run_tool(config.string() + " --world_size x").exit_code, 0);
}

TEST_F(DsConfigTool, ScheduleAsCsv) {
  const auto config = write("sched.json", R"({"train_batch_size": 2,
      "optimizer": {"type": "Adam", "params": {"lr": 0.1, "betas": [0.8, 0.999]}},
      "scheduler": {"type": "WarmupLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 0.1,
                                                   "warmup_num_steps": 4, "warmup_type": "linear"}}})");
  const ToolRun r = run_tool(config.string() + " --schedule 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "step,lr,momentum");
  std::vector<double> lrs;
  while (std::getline(lines, line)) {
    ASSERT_EQ(std::count(line.begin(), line.end(), ','), 2) << line;
    const auto first = line.find(',');
    const auto second = line.find(',', first + 1);
    lrs.push_back(std::stod(line.substr(first + 1, second - first - 1)));
    EXPECT_EQ(line.substr(second + 1), "0.8");
  }
  ASSERT_EQ(lrs.size(), 6u);
  // Optimizer step n runs with the schedule at k = n - 2 (k = -1 is the construction value,
  // warmup_min_lr); linear warmup over 4 steps gives min + (max - min) * k / 4 for k >= 0.
  EXPECT_DOUBLE_EQ(lrs[0], 0.0);
  EXPECT_DOUBLE_EQ(lrs[1], 0.0);
  EXPECT_DOUBLE_EQ(lrs[2], 0.025);
  EXPECT_DOUBLE_EQ(lrs[3], 0.05);
  EXPECT_DOUBLE_EQ(lrs[5], 0.1);
}

TEST_F(DsConfigTool, ScheduleErrorsExitOne) {
  const auto config = write("sched.json", R"({"train_batch_size": 2, "optimizer": {"type": "Adam"},
      "scheduler": {"type": "WarmupLR", "params": {"warmup_num_stepz": 4}}})");
  const ToolRun r = run_tool(config.string() + " --schedule 3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("scheduler.params"), std::string::npos) << r.err;
}

}  // namespace
