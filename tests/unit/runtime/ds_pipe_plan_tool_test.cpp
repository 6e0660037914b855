// The ds_pipe_plan tool as a user runs it: the JSON it prints is the schedule and partition
// the engine uses (compared with the library's functions), and bad input exits 1 with a message.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <deepspeed/pipe_partition.h>
#include <deepspeed/pipe_schedule.h>

namespace ds_pipe_plan_test {

namespace fs = std::filesystem;

const std::string kTool = DS_BINARY_DIR "/bin/ds_pipe_plan";

struct ToolRun {
  int exit_code;
  std::string out, err;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ToolRun run_tool(const std::string& args) {
  const auto dir = fs::temp_directory_path() / ("ds_pipe_plan_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string command = kTool + " " + args + " >" + (dir / "out").string() + " 2>" + (dir / "err").string();
  const int status = std::system(command.c_str());
  ToolRun r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "out"), slurp(dir / "err")};
  fs::remove_all(dir);
  return r;
}

class DsPipePlanTool : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTool)) GTEST_SKIP() << kTool << " is not built";
  }
};

TEST_F(DsPipePlanTool, PrintsTheEnginesTrainSchedule) {
  const auto r = run_tool("schedule --kind train --micro_batches 4 --stages 2 --stage_id 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto s = deepspeed::pipe::train_schedule(4, 2, 1);
  EXPECT_EQ(j["num_pipe_buffers"], s.num_pipe_buffers);
  ASSERT_EQ(j["steps"].size(), s.steps.size());
  for (size_t i = 0; i < s.steps.size(); ++i) {
    ASSERT_EQ(j["steps"][i].size(), s.steps[i].size()) << "step " << i;
    for (size_t k = 0; k < s.steps[i].size(); ++k) {
      const auto& cmd = j["steps"][i][k];
      EXPECT_EQ(cmd["op"], std::string(deepspeed::pipe::op_name(s.steps[i][k].op)));
      if (deepspeed::pipe::has_buffer(s.steps[i][k].op)) {
        EXPECT_EQ(cmd["buffer_id"], s.steps[i][k].buffer_id);
      } else {
        EXPECT_FALSE(cmd.contains("buffer_id")) << cmd.dump();
      }
    }
  }
  // The last step ends the batch: ReduceTiedGrads, ReduceGrads, OptimizerStep, without buffers.
  EXPECT_EQ(j["steps"].back().back(), nlohmann::json({{"op", "OptimizerStep"}}));
  EXPECT_EQ(j["steps"][0], nlohmann::json::array());  // stage 1 waits for stage 0's first forward
}

TEST_F(DsPipePlanTool, PrintsTheInferenceSchedule) {
  const auto r = run_tool("schedule --kind inference --micro_batches 2 --stages 2 --stage_id 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out),
            nlohmann::json::parse(R"({"num_pipe_buffers": 2, "steps": [
              [{"op": "LoadMicroBatch", "buffer_id": 0}, {"op": "ForwardPass", "buffer_id": 0}],
              [{"op": "LoadMicroBatch", "buffer_id": 1}, {"op": "SendActivation", "buffer_id": 0},
               {"op": "ForwardPass", "buffer_id": 1}],
              [{"op": "SendActivation", "buffer_id": 1}]]})"));
}

TEST_F(DsPipePlanTool, PrintsPartitions) {
  auto r = run_tool("partition --method uniform --num_items 10 --num_parts 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json(deepspeed::pipe::partition_uniform(10, 3)));
  r = run_tool("partition --method balanced --weights 5,1,1,1,1,1 --num_parts 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::parse("[0, 1, 6]"));
}

TEST_F(DsPipePlanTool, BadInputExitsWithAMessage) {
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"schedule --micro_batches 4 --stages 2 --stage_id 2", "0 <= stage_id < stages"},
           {"schedule --micro_batches 0 --stages 2 --stage_id 0", "micro_batches >= 1"},
           {"partition --method balanced --weights 1,x,3 --num_parts 2", "'x' is not an integer"},
           {"partition --method balanced --weights 1,-2 --num_parts 2", "negative"},
           {"partition --method uniform --num_parts 2", "needs --num_items"},
           {"partition --method uniform --num_items 4 --num_parts 0", "num_parts must be >= 1"},
       }) {
    const auto r = run_tool(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.out;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
  }
  const auto unknown = run_tool("schedule --kind backward --micro_batches 1 --stages 1 --stage_id 0");
  EXPECT_NE(unknown.exit_code, 0);
}

}  // namespace ds_pipe_plan_test
