#include "launcher/numa_binding.h"

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

using Flags = std::vector<std::string>;

// `numactl --hardware` of a one-socket machine.
constexpr const char* kOneNode =
    "available: 1 nodes (0)\n"
    "node 0 cpus: 0 1 2 3 4 5 6 7\n"
    "node 0 size: 15934 MB\n"
    "node 0 free: 10123 MB\n"
    "node distances:\n"
    "node   0 \n"
    "  0:  10 \n";

// Two sockets, hyperthreads numbered after the physical cores.
constexpr const char* kTwoNodes =
    "available: 2 nodes (0-1)\n"
    "node 0 cpus: 0 1 2 3 8 9 10 11\n"
    "node 0 size: 32061 MB\n"
    "node 0 free: 30000 MB\n"
    "node 1 cpus: 4 5 6 7 12 13 14 15\n"
    "node 1 size: 32253 MB\n"
    "node 1 free: 31000 MB\n"
    "node distances:\n"
    "node   0   1 \n"
    "  0:  10  21 \n"
    "  1:  21  10 \n";

// Xeon Max in flat mode: two CPU nodes, then their two HBM nodes without CPUs.
constexpr const char* kFlatHbm =
    "available: 4 nodes (0-3)\n"
    "node 0 cpus: 0 1 2 3\n"
    "node 0 size: 128000 MB\n"
    "node 1 cpus: 4 5 6 7\n"
    "node 1 size: 128000 MB\n"
    "node 2 cpus:\n"
    "node 2 size: 65536 MB\n"
    "node 3 cpus:\n"
    "node 3 size: 65536 MB\n";

// Fake NUMA: each socket's memory split over two nodes listing the same CPUs.
constexpr const char* kFakeNuma =
    "available: 4 nodes (0-3)\n"
    "node 0 cpus: 0 1 2 3\n"
    "node 1 cpus: 0 1 2 3\n"
    "node 2 cpus: 4 5 6 7\n"
    "node 3 cpus: 4 5 6 7\n";

TEST(NumactlHardware, ParsesOneAndTwoNodes) {
  EXPECT_EQ(parse_numactl_hardware(kOneNode), (NumaTopology{{0, {0, 1, 2, 3, 4, 5, 6, 7}}}));
  EXPECT_EQ(parse_numactl_hardware(kTwoNodes),
            (NumaTopology{{0, {0, 1, 2, 3, 8, 9, 10, 11}}, {1, {4, 5, 6, 7, 12, 13, 14, 15}}}));
}

TEST(NumactlHardware, MemoryOnlyNodesAndSparseIds) {
  EXPECT_EQ(parse_numactl_hardware(kFlatHbm), (NumaTopology{{0, {0, 1, 2, 3}}, {1, {4, 5, 6, 7}}, {2, {}}, {3, {}}}));
  EXPECT_EQ(parse_numactl_hardware("available: 2 nodes (0,2)\nnode 0 cpus: 0 1\nnode 2 cpus: 2 3\n"),
            (NumaTopology{{0, {0, 1}}, {2, {2, 3}}}));
}

TEST(NumactlHardware, NoNodeLinesIsEmpty) {
  EXPECT_TRUE(parse_numactl_hardware("").empty());
  EXPECT_TRUE(parse_numactl_hardware("No NUMA available on this system\n").empty());
}

TEST(NumaMemoryFlags, NormalBindsToTheNodeHoldingAllCores) {
  const auto one = parse_numactl_hardware(kOneNode);
  EXPECT_EQ(numa_memory_flags(one, {0, 1, 2, 3}), (Flags{"-m", "0"}));
  const auto two = parse_numactl_hardware(kTwoNodes);
  EXPECT_EQ(numa_memory_flags(two, {0, 1}), (Flags{"-m", "0"}));
  EXPECT_EQ(numa_memory_flags(two, {4, 5, 6, 7}), (Flags{"-m", "1"}));
  EXPECT_EQ(numa_memory_flags(two, {12, 13}), (Flags{"-m", "1"}));
  // Cores on both sockets: no memory binding.
  EXPECT_EQ(numa_memory_flags(two, {3, 4}), Flags{});
  // Cores numactl does not list (a cpuset it hides): none either.
  EXPECT_EQ(numa_memory_flags(two, {40}), Flags{});
}

TEST(NumaMemoryFlags, FlatHbmPrefersThePairedHbmNode) {
  const auto hbm = parse_numactl_hardware(kFlatHbm);
  EXPECT_EQ(numa_memory_flags(hbm, {0, 1}), (Flags{"-p", "2"}));
  EXPECT_EQ(numa_memory_flags(hbm, {4, 5, 6, 7}), (Flags{"-p", "3"}));
  EXPECT_EQ(numa_memory_flags(hbm, {3, 4}), Flags{});
}

TEST(NumaMemoryFlags, FakeNumaBindsTheWholeGroup) {
  const auto fake = parse_numactl_hardware(kFakeNuma);
  EXPECT_EQ(numa_memory_flags(fake, {0, 1}), (Flags{"-m", "0,1"}));
  EXPECT_EQ(numa_memory_flags(fake, {4, 5}), (Flags{"-m", "2,3"}));
}

TEST(NumaMemoryFlags, RealNodeIdsWhenSparse) {
  const auto sparse = parse_numactl_hardware("available: 2 nodes (0,2)\nnode 0 cpus: 0 1\nnode 2 cpus: 2 3\n");
  EXPECT_EQ(numa_memory_flags(sparse, {2, 3}), (Flags{"-m", "2"}));
}

TEST(NumaMemoryFlags, NoTopologyNoFlags) { EXPECT_EQ(numa_memory_flags({}, {0, 1}), Flags{}); }

TEST(NumactlCommand, AsDeepSpeedEmitsIt) {
  const auto two = parse_numactl_hardware(kTwoNodes);
  EXPECT_EQ(numactl_command(two, {4, 5, 6, 12}), (Flags{"numactl", "-m", "1", "-C", "4-6,12"}));
  EXPECT_EQ(numactl_command(two, {3, 4}), (Flags{"numactl", "-C", "3-4"}));
  EXPECT_EQ(numactl_command(parse_numactl_hardware(kFlatHbm), {1}), (Flags{"numactl", "-p", "2", "-C", "1"}));
  EXPECT_EQ(numactl_command({}, {0, 2}), (Flags{"numactl", "-C", "0,2"}));
}

TEST(NumactlErrors, PermissionErrorsAreTheFallbackKind) {
  EXPECT_TRUE(is_numa_permission_error("set_mempolicy: Operation not permitted"));
  EXPECT_TRUE(is_numa_permission_error("sched_setaffinity: Permission denied"));
  EXPECT_FALSE(is_numa_permission_error("libnuma: Warning: node argument 7 is out of range"));
}

TEST(NumactlErrors, MissingProgramIsReported) {
  // numactl_error runs the command with `true` appended; a program that is not there fails.
  const auto err = numactl_error({"/nonexistent/numactl", "-C", "0"});
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(*err, "cannot run /nonexistent/numactl");
  EXPECT_FALSE(numactl_error({"env"}).has_value());  // `env true` succeeds
  const auto sh = numactl_error({"sh", "-c", "echo 'set_mempolicy: Operation not permitted' >&2; exit 1", "sh"});
  ASSERT_TRUE(sh.has_value());
  EXPECT_EQ(*sh, "set_mempolicy: Operation not permitted");
}

}  // namespace
}  // namespace deepspeed::launcher
