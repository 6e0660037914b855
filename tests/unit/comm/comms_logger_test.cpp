// The communication logger's arithmetic against DeepSpeed's formulas (utils/comms_logging.py):
// algorithm and bus bandwidth per collective, message sizes as DeepSpeed prints them, the
// trimmed mean, which ops are logged, and the log_summary table.
#include <gtest/gtest.h>

#include <deepspeed/comms_logger.h>

namespace deepspeed::comm {
namespace {

// 1 MB in 1 ms is 8 Gbps (bytes/ms x 8 / 1e6).
constexpr int64_t kMB = 1000000;

TEST(CommsBandwidth, DeepSpeedsFormulas) {
  // all_reduce over 4 ranks: algbw counts the data twice; busbw = size/t x 2(n-1)/n.
  auto ar = calc_bw_log("all_reduce", kMB, 1.0, 4);
  EXPECT_DOUBLE_EQ(ar.algbw_gbps, 16.0);
  EXPECT_DOUBLE_EQ(ar.busbw_gbps, 8.0 * 2 * 3 / 4);
  // all_gather logs one rank's input: x n for the whole, then (n-1)/n.
  auto ag = calc_bw_log("all_gather", kMB, 2.0, 4);
  EXPECT_DOUBLE_EQ(ag.algbw_gbps, 4 * 8.0 / 2);
  EXPECT_DOUBLE_EQ(ag.busbw_gbps, 4 * 8.0 / 2 * 3 / 4);
  EXPECT_DOUBLE_EQ(calc_bw_log("all_gather_into_tensor", kMB, 2.0, 4).algbw_gbps, 16.0);
  // reduce_scatter logs its whole input: (n-1)/n.
  auto rs = calc_bw_log("reduce_scatter_tensor", kMB, 1.0, 2);
  EXPECT_DOUBLE_EQ(rs.algbw_gbps, 8.0);
  EXPECT_DOUBLE_EQ(rs.busbw_gbps, 4.0);
  auto a2a = calc_bw_log("all_to_all_single", kMB, 1.0, 8);
  EXPECT_DOUBLE_EQ(a2a.busbw_gbps, 7.0);
  // broadcast and barrier: busbw = algbw.
  auto bc = calc_bw_log("broadcast", kMB, 4.0, 16);
  EXPECT_DOUBLE_EQ(bc.algbw_gbps, 2.0);
  EXPECT_DOUBLE_EQ(bc.busbw_gbps, 2.0);
  EXPECT_DOUBLE_EQ(calc_bw_log("barrier", 0, 0.5, 2).algbw_gbps, 0.0);
  // One rank: nothing crosses a link.
  EXPECT_DOUBLE_EQ(calc_bw_log("all_reduce", kMB, 1.0, 1).busbw_gbps, 0.0);
  // A zero duration does not divide by zero.
  EXPECT_DOUBLE_EQ(calc_bw_log("all_reduce", kMB, 0.0, 2).algbw_gbps, 0.0);
}

TEST(CommsBandwidth, ConvertSizeAsDeepSpeedPrintsIt) {
  EXPECT_EQ(convert_size(0), "0B");
  EXPECT_EQ(convert_size(4), "4.0 B");
  EXPECT_EQ(convert_size(848), "848.0 B");
  EXPECT_EQ(convert_size(1024), "1.0 KB");
  EXPECT_EQ(convert_size(4000), "3.91 KB");
  EXPECT_EQ(convert_size(1536), "1.5 KB");
  EXPECT_EQ(convert_size(3 * 1024 * 1024), "3.0 MB");
}

TEST(CommsBandwidth, TrimMeanDropsATenthAtEachEnd) {
  EXPECT_DOUBLE_EQ(trim_mean({}, 0.1), 0.0);
  EXPECT_DOUBLE_EQ(trim_mean({5, 1, 3}, 0.1), 3.0);  // round(0.3) = 0: nothing dropped
  // 10 values: one dropped at each end.
  EXPECT_DOUBLE_EQ(trim_mean({100, 1, 2, 3, 4, 5, 6, 7, 8, -50}, 0.1), 4.5);
  // 15 values: round(1.5) = 2 at each end (half to even).
  std::vector<double> v;
  for (int i = 1; i <= 15; ++i) v.push_back(i);
  v[0] = -1000;
  v[14] = 1000;
  EXPECT_DOUBLE_EQ(trim_mean(v, 0.1), 8.0);
}

CommsLoggerConfig enabled(bool prof_all, std::vector<std::string> ops = {}) {
  CommsLoggerConfig c;
  c.enabled = true;
  c.prof_all = prof_all;
  c.prof_ops = std::move(ops);
  return c;
}

TEST(CommsLogger, ProfAllOrTheNamedOps) {
  CommsLogger all(enabled(true), 2, 0);
  EXPECT_TRUE(all.should_log("broadcast"));
  CommsLogger some(enabled(false, {"all_reduce"}), 2, 0);
  EXPECT_TRUE(some.should_log("all_reduce"));
  EXPECT_FALSE(some.should_log("broadcast"));
  some.start_profiling_op({"broadcast"});
  EXPECT_TRUE(some.should_log("broadcast"));
  some.stop_profiling_op({"all_reduce", "broadcast"});
  EXPECT_FALSE(some.should_log("all_reduce"));
  some.start_profiling_comms();
  EXPECT_TRUE(some.should_log("barrier"));
}

TEST(CommsLogger, VerboseLinesAndTheSummaryTable) {
  CommsLoggerConfig c = enabled(true);
  c.verbose = true;
  std::vector<std::string> lines;
  CommsLogger logger(c, 2, 0, [&](const std::string& line) { lines.push_back(line); });
  logger.append("all_reduce", "all_reduce", 2.0, 4000);
  logger.append("all_reduce", "all_reduce", 4.0, 4000);
  logger.append("all_reduce", "all_reduce", 1.0, 8);
  logger.append("broadcast", "broadcast", 1.0, 40);
  EXPECT_EQ(logger.total_operations(), 4);
  ASSERT_EQ(lines.size(), 4u);
  // 4000 B in 2 ms: algbw 2 x 4000/2 x 8/1e6 = 0.032 Gbps; busbw 4000/2 x 2(1)/2 x 8e-6 = 0.016.
  EXPECT_EQ(lines[0], "[Rank 0] comm op: all_reduce | time (ms): 2.00 | msg size: 3.91 KB | algbw (Gbps): 0.03 | "
                      "busbw (Gbps): 0.02");
  const std::string expected =
      "Comm. Op            Message Size        Count               Total Latency(ms)   Avg Latency(ms)     "
      "tput_avg (Gbps)     busbw_avg (Gbps)    \n"
      "all_reduce\n"
      "                    8.0 B               1                   1.00                1.00                "
      "0.00                0.00                \n"
      "                    3.91 KB             2                   6.00                3.00                "
      "0.02                0.01                \n"
      "broadcast\n"
      "                    40.0 B              1                   1.00                1.00                "
      "0.00                0.00                \n";
  EXPECT_EQ(logger.summary(), expected);
  EXPECT_TRUE(logger.has_unreported());
  logger.mark_reported();
  EXPECT_FALSE(logger.has_unreported());
}

TEST(CommsLogger, QuietOnOtherRanks) {
  CommsLoggerConfig c = enabled(true);
  c.verbose = true;
  int printed = 0;
  CommsLogger logger(c, 2, 1, [&](const std::string&) { ++printed; });
  logger.append("barrier", "barrier", 0.1, 0);
  EXPECT_EQ(printed, 0);
  EXPECT_EQ(logger.total_operations(), 1);
}

}  // namespace
}  // namespace deepspeed::comm
