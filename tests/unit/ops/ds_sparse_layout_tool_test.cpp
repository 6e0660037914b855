// The ds_sparse_layout tool as a user runs it: the layout as JSON on stdout, and for a bad
// config or sequence length the message on stderr and a non-zero exit.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <deepspeed/config.h>
#include <deepspeed/sparsity_config.h>

namespace {

namespace fs = std::filesystem;

const std::string kTool = DS_BINARY_DIR "/bin/ds_sparse_layout";

struct ToolRun {
  int exit_code;
  std::string out, err;
};

ToolRun run_tool(const std::string& args) {
  const fs::path dir = fs::temp_directory_path() / ("ds_sparse_layout_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string command = kTool + " " + args + " >" + (dir / "out").string() + " 2>" + (dir / "err").string();
  const int status = std::system(command.c_str());
  auto slurp = [](const fs::path& p) {
    std::ostringstream s;
    s << std::ifstream(p).rdbuf();
    return s.str();
  };
  ToolRun r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "out"), slurp(dir / "err")};
  fs::remove_all(dir);
  return r;
}

class DsSparseLayoutTool : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTool)) GTEST_SKIP() << kTool << " is not built";
  }
};

TEST_F(DsSparseLayoutTool, PrintsTheLayoutTheOpBuilds) {
  const std::string config = R"({"mode": "bigbird", "num_heads": 2, "block": 16, "different_layout_per_head": true, "seed": 5})";
  const ToolRun r = run_tool("--config '" + config + "' --seq_len 128");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto printed = nlohmann::json::parse(r.out);
  ASSERT_EQ(printed.size(), 2u);
  ASSERT_EQ(printed[0].size(), 8u);
  nlohmann::json section = nlohmann::json::parse(config);
  section.erase("num_heads");
  const auto layout = deepspeed::ops::sparse_attention::make_sparsity_config(
                          deepspeed::read_sparse_attention_config(section), 2)
                          ->make_layout(128);
  EXPECT_EQ(printed, nlohmann::json::parse(layout.to_json()));
}

TEST_F(DsSparseLayoutTool, ReadsAConfigFile) {
  const fs::path file = fs::temp_directory_path() / ("sparse_" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << R"({"mode": "fixed", "num_heads": 1, "block": 32, "num_local_blocks": 2})";
  const ToolRun r = run_tool("--config " + file.string() + " --seq_len 128");
  fs::remove(file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out),
            nlohmann::json::parse("[[[1,1,0,1],[1,1,0,1],[0,1,1,1],[0,1,1,1]]]"));
}

TEST_F(DsSparseLayoutTool, BadConfigOrLengthExitsNonZeroWithTheMessage) {
  ToolRun r = run_tool(R"(--config '{"mode": "fixed", "num_heads": 4}' --seq_len 100)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Sequence Length, 100, needs to be dividable by Block size 16!"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  r = run_tool(R"(--config '{"mode": "fixed", "num_heads": 4, "num_local_blocks": 3, "num_global_blocks": 2}' --seq_len 64)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("must be dividable by number of global blocks, 2!"), std::string::npos) << r.err;
  r = run_tool(R"(--config '{"mode": "fixed"}' --seq_len 64)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("num_heads: required"), std::string::npos) << r.err;
  r = run_tool(R"(--config '{"mode": "fixed", "num_heads": 2, "num_locl_blocks": 3}' --seq_len 64)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("sparse_attention.num_locl_blocks: unknown key"), std::string::npos) << r.err;
}

}  // namespace
