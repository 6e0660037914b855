#include "launcher/hostfile.h"

#include <unistd.h>

#include <cstring>
#include <sstream>

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

using testing::expect_launch_error;

HostPool parse(const std::string& text) {
  std::istringstream in(text);
  return parse_hostfile(in, "hf");
}

TEST(Hostfile, GoodWithBlankLinesCommentsAndIndentation) {
  // DeepSpeed's test_hostfile_good.
  const auto pool = parse(R"(
    worker-1 slots=2
    worker-2 slots=2

    localhost slots=1
    123.23.12.10 slots=2

    #worker-1 slots=3
    # this is a comment

  )");
  const HostPool expected = {{"worker-1", 2}, {"worker-2", 2}, {"localhost", 1}, {"123.23.12.10", 2}};
  EXPECT_EQ(pool, expected);
}

TEST(Hostfile, KeepsFileOrderAndCase) {
  const HostPool expected = {{"b", 1}, {"A", 2}, {"a", 3}};
  EXPECT_EQ(parse("b slots=1\nA slots=2\na slots=3\n"), expected);
}

TEST(Hostfile, TrailingTextAfterSlotsIsIgnored) {
  const HostPool expected = {{"w", 2}};
  EXPECT_EQ(parse("w slots=2 # c\n"), expected);
  EXPECT_EQ(parse("w\tslots=2 max_slots=4\n"), expected);
}

TEST(Hostfile, ZeroSlotsAllowed) {
  const HostPool expected = {{"w", 0}, {"v", 1}};
  EXPECT_EQ(parse("w slots=0\nv slots=1\n"), expected);
}

TEST(Hostfile, BadEntryNamesFileLineAndText) {
  expect_launch_error([] { parse("worker-1 slots=2\n\nworker-2 slots=(1\n"); },
                      "hf:3: Hostfile contains a bad entry: 'worker-2 slots=(1'");
  expect_launch_error([] { parse("worker-1\n"); }, "hf:1: Hostfile contains a bad entry");
  expect_launch_error([] { parse("worker-1 slots=\n"); }, "hf:1:");
  expect_launch_error([] { parse("worker-1 slot=2\n"); }, "expected 'HOSTNAME slots=N'");
  expect_launch_error([] { parse("slots=2\n"); }, "hf:1:");
}

// A NUL would cut the message short where it is printed, and a binary file would send its
// control bytes to the terminal: the quoted line has them escaped, and the message is whole.
TEST(Hostfile, ControlBytesInTheQuotedLineAreEscaped) {
  const char text[] = "worker-1 slots=2\nwork\0er slo\x1b[2Jts=1 \\ \x7f\xff\tend\n";
  try {
    parse(std::string(text, sizeof(text) - 1));
    ADD_FAILURE() << "no error";
  } catch (const LaunchError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.size(), std::strlen(e.what())) << "a NUL is in the message";
    EXPECT_NE(what.find("hf:2: Hostfile contains a bad entry: 'work\\x00er slo\\x1b[2Jts=1 \\\\ \\x7f\\xff\\tend', "
                        "unable to proceed with launching"),
              std::string::npos)
        << what;
  }
  // A host name with control bytes is refused: a NUL would cut it short on ssh's command line.
  const char nul_host[] = "work\0er slots=1\n";
  expect_launch_error([&] { parse(std::string(nul_host, sizeof(nul_host) - 1)); },
                      "hf:1: host name 'work\\x00er' holds control bytes");
  expect_launch_error([] { parse("a\x01 slots=1\n"); }, "hf:1: host name 'a\\x01' holds control bytes");
  expect_launch_error([] { parse("a\x7f slots=1\n"); }, "host name 'a\\x7f'");
}

TEST(Hostfile, DuplicateHostNamesLine) {
  expect_launch_error([] { parse("worker-1 slots=2\nworker-2 slots=1\nworker-1 slots=1\n"); },
                      "hf:3: Hostfile contains multiple entries for worker-1");
}

TEST(Hostfile, EmptyFileIsAnError) {
  expect_launch_error([] { parse(""); }, "Hostfile is empty or not formatted correctly");
  expect_launch_error([] { parse("# only a comment\n\n"); }, "hf: Hostfile is empty");
}

TEST(Hostfile, HugeSlotCountIsAnError) {
  expect_launch_error([] { parse("w slots=99999999999999999999\n"); }, "out of range");
  // Found by fuzzing: slots=999999999 made the launcher allocate (and plan) a billion slots.
  expect_launch_error([] { parse("w slots=4097\n"); }, "hf:1: slots=4097 is out of range for host 'w' (at most 4096");
  EXPECT_EQ(parse("w slots=4096\n"), (HostPool{{"w", 4096}}));
}

// Found by fuzzing: std::regex recursed once per character, and a hostfile with a 200 KB
// line (a binary file given as -H) overflowed the stack.
TEST(Hostfile, LongLinesAreParsedWithoutRecursion) {
  const std::string name(1 << 20, 'h');
  EXPECT_EQ(parse(name + " slots=2\n"), (HostPool{{name, 2}}));
  expect_launch_error([] { parse(std::string(1 << 20, 'x') + "\n"); }, "hf:1: Hostfile contains a bad entry");
  expect_launch_error([] { parse("w " + std::string(1 << 20, ' ') + "slot=1\n"); }, "hf:1: Hostfile contains a bad entry");
}

TEST(Hostfile, ReadMissingFileGivesNullopt) {
  EXPECT_FALSE(read_hostfile("/nonexistent/dir/hostfile").has_value());
}

TEST(Hostfile, ReadFile) {
  testing::TempDir dir;
  auto path = dir.write("hostfile", "a slots=1\n");
  auto pool = read_hostfile(path);
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ(pool->size(), 1u);
  auto bad = dir.write("bad", "a slots=1\nb\n");
  expect_launch_error([&] { read_hostfile(bad); }, bad + ":2:");
}

}  // namespace
}  // namespace deepspeed::launcher
