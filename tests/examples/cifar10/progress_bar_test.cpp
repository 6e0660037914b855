// The example's progress bar text: the bar, the rate, and the time left in the epoch and in
// the whole run.
#include <gtest/gtest.h>

#include "progress_bar.h"

namespace cifar10 {
namespace {

TEST(ProgressBar, FormatsDurations) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(65.4), "1:05");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(ProgressBar, ShowsTheEtaOfTheEpochAndOfTheRun) {
  // 50 of 100 in 10 s: 5 it/s; 50 left in the epoch (10 s) and 250 in the run (50 s).
  EXPECT_EQ(progress_line("epoch 1/3", 50, 100, 10.0, 200),
            "epoch 1/3 [===============>              ] 50/100 5.0 it/s eta 0:10 (run 0:50)");
  // The last epoch has no run ETA of its own.
  EXPECT_EQ(progress_line("epoch 3/3", 100, 100, 4.0, 0),
            "epoch 3/3 [==============================] 100/100 25.0 it/s eta 0:00");
  // Before the first iteration the ETA is unknown.
  EXPECT_EQ(progress_line("e", 0, 10, 0.0, 10), "e [>                             ] 0/10 0.0 it/s eta ? (run ?)");
}

}  // namespace
}  // namespace cifar10
