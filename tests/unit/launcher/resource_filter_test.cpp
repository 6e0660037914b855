#include "launcher/resource_filter.h"

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

using testing::expect_launch_error;

const Resources kOne = {{"worker-0", {0, 1, 2, 3}}};
const Resources kTwo = {{"worker-0", {0, 1, 2, 3}}, {"worker-1", {0, 1, 2, 3}}};

Resources filter(const Resources& hosts, const std::string& inc, const std::string& exc) {
  return parse_resource_filter(hosts, inc, exc);
}

TEST(ResourceFilter, MutuallyExclusive) {
  expect_launch_error([] { filter({}, "A", "B"); }, "mutually exclusive");
}

TEST(ResourceFilter, NoFilterIsIdentity) {
  EXPECT_EQ(filter(kOne, "", ""), kOne);
  EXPECT_EQ(filter(kTwo, "", ""), kTwo);
}

TEST(ResourceFilter, LocalExcludeSlots) {
  EXPECT_EQ(filter(kOne, "", "worker-0:1"), (Resources{{"worker-0", {0, 2, 3}}}));
  EXPECT_EQ(filter(kOne, "", "worker-0:1,2"), (Resources{{"worker-0", {0, 3}}}));
}

TEST(ResourceFilter, LocalIncludeSlots) {
  EXPECT_EQ(filter(kOne, "worker-0:1", ""), (Resources{{"worker-0", {1}}}));
  EXPECT_EQ(filter(kOne, "worker-0:1,1", ""), (Resources{{"worker-0", {1}}}));
  EXPECT_EQ(filter(kOne, "worker-0:1@worker-0:0,1", ""), (Resources{{"worker-0", {0, 1}}}));
  EXPECT_EQ(filter(kOne, "worker-0:3,1", ""), (Resources{{"worker-0", {1, 3}}}));
}

TEST(ResourceFilter, BareHostIncludeMeansAllSlots) {
  // docs/compatibility.md, "Launcher" (DeepSpeed 0.19.6 selects nothing).
  EXPECT_EQ(filter(kOne, "worker-0", ""), kOne);
  EXPECT_EQ(filter(kTwo, "worker-1", ""), (Resources{{"worker-1", {0, 1, 2, 3}}}));
  // Merged with a slot list of the same host: the union, i.e. all.
  EXPECT_EQ(filter(kOne, "worker-0:2@worker-0", ""), kOne);
}

TEST(ResourceFilter, BareHostExcludeRemovesIt) {
  EXPECT_EQ(filter(kOne, "", "worker-0"), Resources{});
  EXPECT_EQ(filter(kOne, "", "worker-0:0,1,2,3"), Resources{});
  EXPECT_EQ(filter(kTwo, "", "worker-1"), (Resources{{"worker-0", {0, 1, 2, 3}}}));
}

TEST(ResourceFilter, Multinode) {
  EXPECT_EQ(filter(kTwo, "worker-1:0,3", ""), (Resources{{"worker-1", {0, 3}}}));
  EXPECT_EQ(filter(kTwo, "", "worker-0:0,1@worker-1:3"),
            (Resources{{"worker-0", {2, 3}}, {"worker-1", {0, 1, 2}}}));
  // Output keeps host_info order, not filter order.
  EXPECT_EQ(filter(kTwo, "worker-1:0@worker-0:1", ""), (Resources{{"worker-0", {1}}, {"worker-1", {0}}}));
}

TEST(ResourceFilter, IssueExamples) {
  const Resources pool = {{"worker-2", {0, 1}}, {"worker-3", {0, 1}}, {"localhost", {0, 1}}};
  EXPECT_EQ(filter(pool, "worker-2:0@worker-3:0,1", ""), (Resources{{"worker-2", {0}}, {"worker-3", {0, 1}}}));
  EXPECT_EQ(filter(pool, "localhost:1", ""), (Resources{{"localhost", {1}}}));
}

TEST(ResourceFilter, UnknownHost) {
  expect_launch_error([] { filter(kTwo, "jeff", ""); }, "--include: Hostname 'jeff' not found in hostfile");
  expect_launch_error([] { filter(kTwo, "", "jeff"); }, "--exclude: Hostname 'jeff' not found in hostfile");
  expect_launch_error([] { filter(kTwo, "jeff:0", ""); }, "Hostname 'jeff' not found");
  // DeepSpeed's formatting case: '5' is read as a host name.
  expect_launch_error([] { filter(kTwo, "", "worker-1@worker-0:1@5"); }, "Hostname '5' not found");
}

TEST(ResourceFilter, UnknownSlot) {
  expect_launch_error([] { filter(kTwo, "worker-1:4", ""); }, "No slot '4' specified on host 'worker-1'");
  expect_launch_error([] { filter(kTwo, "", "worker-1:4"); }, "No slot '4' specified on host 'worker-1'");
}

TEST(ResourceFilter, MalformedSlots) {
  expect_launch_error([] { filter(kTwo, "worker-1:", ""); }, "bad slot ''");
  expect_launch_error([] { filter(kTwo, "worker-1:a", ""); }, "bad slot 'a'");
  expect_launch_error([] { filter(kTwo, "worker-1:1:2", ""); }, "one ':'");
  expect_launch_error([] { filter(kTwo, "worker-1:-1", ""); }, "No slot '-1'");
}

TEST(ResourceFilter, InclusionExclusionExpandsThePool) {
  const HostPool pool = {{"a", 2}, {"b", 3}};
  EXPECT_EQ(parse_inclusion_exclusion(pool, "", ""), (Resources{{"a", {0, 1}}, {"b", {0, 1, 2}}}));
  EXPECT_EQ(parse_inclusion_exclusion(pool, "b", ""), (Resources{{"b", {0, 1, 2}}}));
  EXPECT_EQ(parse_inclusion_exclusion(pool, "", "a:0"), (Resources{{"a", {1}}, {"b", {0, 1, 2}}}));
  // -i host:N with N not a slot of host (README decision: an error, DeepSpeed accepts it).
  expect_launch_error([&] { parse_inclusion_exclusion(pool, "a:2", ""); }, "No slot '2' specified on host 'a'");
}

TEST(ResourceFilter, ZeroSlotHostIsDropped) {
  const HostPool pool = {{"a", 0}, {"b", 1}};
  EXPECT_EQ(parse_inclusion_exclusion(pool, "", "b:0@a"), Resources{});
  EXPECT_EQ(parse_inclusion_exclusion(pool, "a", ""), Resources{});
}

TEST(LimitResources, NumNodesKeepsFirstHosts) {
  const Resources r = {{"a", {0, 1}}, {"b", {0, 1}}, {"c", {0}}};
  EXPECT_EQ(limit_resources(r, 2, -1), (Resources{{"a", {0, 1}}, {"b", {0, 1}}}));
  EXPECT_EQ(limit_resources(r, 3, -1), r);
  EXPECT_EQ(limit_resources(r, -1, -1), r);
  EXPECT_EQ(limit_resources(r, 0, -1), r);
}

TEST(LimitResources, NumNodesBeyondHostsIsAnError) {
  const Resources r = {{"a", {0, 1}}, {"b", {0, 1}}};
  expect_launch_error([&] { limit_resources(r, 3, -1); }, "--num_nodes=3 but only 2 hosts are available");
}

TEST(LimitResources, NumGpusIgnoresSlotCounts) {
  const Resources r = {{"a", {0, 1}}, {"b", {1}}};
  EXPECT_EQ(limit_resources(r, -1, 1), (Resources{{"a", {0}}, {"b", {0}}}));
  EXPECT_EQ(limit_resources(r, -1, 3), (Resources{{"a", {0, 1, 2}}, {"b", {0, 1, 2}}}));
  EXPECT_EQ(limit_resources(r, 1, 2), (Resources{{"a", {0, 1}}}));
  // As a hostfile's slots=: --num_gpus 1000000000 would plan a billion ranks per host.
  expect_launch_error([&] { limit_resources(r, -1, 4097); }, "--num_gpus=4097: at most 4096 slots per host");
}

}  // namespace
}  // namespace deepspeed::launcher
