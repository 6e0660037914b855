#include "launcher/shell_quote.h"

#include "launcher/system_probe.h"
#include "test_util.h"

namespace deepspeed::launcher {
namespace {

TEST(ShellQuote, SafeWordsStayBare) {
  EXPECT_EQ(shell_quote("abc-1.2/x:y,z@w%q+r=s_t"), "abc-1.2/x:y,z@w%q+r=s_t");
}

TEST(ShellQuote, OthersAreSingleQuoted) {
  EXPECT_EQ(shell_quote("64(x2)"), "'64(x2)'");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_join({"echo", "a b", "c"}), "echo 'a b' c");
}

TEST(ShellQuote, RoundTripsThroughARealShell) {
  const std::vector<std::string> values = {"plain", "two words", "it's", "say \"hi\"", "$HOME `x` \\n",
                                           "tab\there", "new\nline", "*?[]{}~#!;&|<>", ""};
  for (const auto& v : values) {
    std::string out;
    ASSERT_EQ(run_and_capture({"/bin/sh", "-c", "printf %s " + shell_quote(v)}, out), 0) << v;
    EXPECT_EQ(out, v);
  }
}

TEST(ShellSplit, QuotesAndEscapes) {
  EXPECT_EQ(shell_split("-a 'b c' \"d e\" f\\ g"), (std::vector<std::string>{"-a", "b c", "d e", "f g"}));
  EXPECT_EQ(shell_split("  "), std::vector<std::string>{});
  EXPECT_EQ(shell_split("--mca btl_tcp_if_include lo"), (std::vector<std::string>{"--mca", "btl_tcp_if_include", "lo"}));
  EXPECT_EQ(shell_split("''"), std::vector<std::string>{""});
  testing::expect_launch_error([] { shell_split("'abc"); }, "unterminated single quote");
  testing::expect_launch_error([] { shell_split("\"abc"); }, "unterminated double quote");
}

}  // namespace
}  // namespace deepspeed::launcher
