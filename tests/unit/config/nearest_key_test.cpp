#include <gtest/gtest.h>

#include "config/nearest_key.h"

namespace deepspeed::config_detail {
namespace {

TEST(NearestKey, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("stage3_param_persitance_threshold", "stage3_param_persistence_threshold"), 2u);
}

TEST(NearestKey, PicksClosestAndFirstOnTies) {
  EXPECT_EQ(nearest_key("train_batch_sise", {"steps_per_print", "train_batch_size", "fp16"}), "train_batch_size");
  EXPECT_EQ(nearest_key("ab", {"aa", "bb"}), "aa");
  EXPECT_EQ(nearest_key("x", {}), "");
}

}  // namespace
}  // namespace deepspeed::config_detail
