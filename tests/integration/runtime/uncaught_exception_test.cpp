// An exception that escapes a rank's main is one line naming its type and message (and the
// rank), exit status 1; LibTorch's stack trace only with TORCH_SHOW_CPP_STACKTRACES=1.
#include <gtest/gtest.h>

#include <regex>

#include "multiprocess.h"

using deepspeed::testing::run_ranks;

// A named namespace: this binary's test files are compiled together (unity build).
namespace uncaught_exception_test {

const std::string kProgram = DS_BINARY_DIR "/bin/ds_test_uncaught_exception_program";

TEST(UncaughtException, OneLineWithTypeAndMessage) {
  const auto ranks = run_ranks(1, kProgram, {});
  ASSERT_EQ(ranks.size(), 1u);
  const auto& r = ranks[0];
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\n\[rank 0\] uncaught c10::Error: [^\n]*shapes cannot be multiplied \(1x3 and 4x1\)\n$)")))
      << r.output;
  EXPECT_EQ(r.output.find("frame #"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
}

TEST(UncaughtException, StackTraceWhenAskedFor) {
  deepspeed::testing::RunOptions options;
  options.env["TORCH_SHOW_CPP_STACKTRACES"] = "1";
  const auto ranks = run_ranks(1, kProgram, {}, options);
  const auto& r = ranks.at(0);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("[rank 0] uncaught c10::Error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Exception raised from"), std::string::npos) << r.output;
}

}  // namespace uncaught_exception_test
