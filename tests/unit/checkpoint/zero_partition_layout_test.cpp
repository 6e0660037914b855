// ds_cpp_layout: what it writes reads back as the same plan, a layout from before bucket
// classes reads with none, and a damaged one is a CheckpointError naming the file and entry.
#include <gtest/gtest.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/zero_partition_layout.h"

namespace deepspeed::checkpoint {
namespace {

ZeroPartitionLayout three_parameters() {
  ZeroPartitionLayout l;
  l.numels = {100, 10, 100};
  l.groups = {0, 0, 0};
  l.names = {"a.weight", "a.bias", "b.weight"};
  l.bucket_elements = 64;
  l.classes = {0, 1, 0};
  return l;
}

c10::impl::GenericDict optimizer_state_dict(const c10::impl::GenericDict& layout) {
  auto d = make_string_dict();
  d.insert("ds_cpp_layout", layout);
  return d;
}

constexpr const char* kFile = "zero_pp_rank_0_mp_rank_00_optim_states.pt";

std::string error_reading(const c10::impl::GenericDict& optimizer_state) {
  try {
    read_zero_partition_layout(optimizer_state, kFile);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

std::string error_of(const c10::impl::GenericDict& layout) { return error_reading(optimizer_state_dict(layout)); }

TEST(ZeroPartitionLayout, RoundTripsToTheSamePlan) {
  const auto saved = three_parameters();
  const auto read = read_zero_partition_layout(optimizer_state_dict(to_ivalue(saved)), "f.pt");
  EXPECT_EQ(read.numels, saved.numels);
  EXPECT_EQ(read.groups, saved.groups);
  EXPECT_EQ(read.names, saved.names);
  EXPECT_EQ(read.bucket_elements, saved.bucket_elements);
  EXPECT_EQ(read.classes, saved.classes);
  const auto a = saved.plan(2), b = read.plan(2);
  ASSERT_EQ(a.buckets.size(), b.buckets.size());
  for (size_t i = 0; i < a.buckets.size(); ++i) EXPECT_EQ(a.buckets[i].size, b.buckets[i].size);
}

TEST(ZeroPartitionLayout, OlderLayoutsReadWithoutClassesOrNames) {
  auto old = three_parameters();
  old.classes.clear();
  auto dict = to_ivalue(old);
  EXPECT_FALSE(dict.contains("bucket_classes"));
  EXPECT_TRUE(read_zero_partition_layout(optimizer_state_dict(dict), "f.pt").classes.empty());
  ASSERT_EQ(dict.erase("names"), 1u);
  const auto read = read_zero_partition_layout(optimizer_state_dict(dict), "f.pt");
  EXPECT_TRUE(read.names.empty());
  EXPECT_EQ(read.numels, old.numels);
}

TEST(ZeroPartitionLayout, DamagedEntriesNameTheFileAndTheEntry) {
  const std::string file = kFile;
  EXPECT_NE(error_reading(make_string_dict()).find(file + ": optimizer_state_dict: has no 'ds_cpp_layout' entry"),
            std::string::npos);

  auto classes = to_ivalue(three_parameters());
  classes.insert_or_assign("bucket_classes", c10::List<int64_t>({0, 1}));
  EXPECT_NE(error_of(classes).find(file + ": ds_cpp_layout.bucket_classes has 2 entries for 3 parameters"),
            std::string::npos) << error_of(classes);

  auto names = to_ivalue(three_parameters());
  names.insert_or_assign("names", c10::List<std::string>({"a.weight"}));
  EXPECT_NE(error_of(names).find("ds_cpp_layout.names should name every parameter (3)"), std::string::npos)
      << error_of(names);

  auto groups = to_ivalue(three_parameters());
  groups.insert_or_assign("groups", c10::List<int64_t>({0}));
  EXPECT_NE(error_of(groups).find("ds_cpp_layout.groups has 1 entries for 3 parameters"), std::string::npos)
      << error_of(groups);

  auto bucket = to_ivalue(three_parameters());
  ASSERT_EQ(bucket.erase("bucket_elements"), 1u);
  EXPECT_NE(error_of(bucket).find("ds_cpp_layout: has no 'bucket_elements' entry"), std::string::npos)
      << error_of(bucket);
}

}  // namespace
}  // namespace deepspeed::checkpoint
