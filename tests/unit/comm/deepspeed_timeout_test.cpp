// DEEPSPEED_TIMEOUT is read as DeepSpeed reads it (Python's int() of whole minutes); what
// DeepSpeed would not take, and 0 or negative minutes, is an error naming the variable and
// its value (never a fraction cut to 0, nor "2x" read as 2).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <deepspeed/comm.h>
#include <deepspeed/errors.h>

#include "comm/deepspeed_timeout.h"

namespace deepspeed::comm {
namespace {

using std::chrono::minutes;

std::string refusal(std::string_view value) {
  try {
    const auto t = parse_deepspeed_timeout(value);
    return "accepted as " + std::to_string(t.count()) + " ms";
  } catch (const CommError& e) {
    return e.what();
  }
}

TEST(DeepSpeedTimeout, UnsetOrEmptyIsTenMinutes) {
  EXPECT_EQ(parse_deepspeed_timeout(std::nullopt), minutes(10));
  EXPECT_EQ(parse_deepspeed_timeout(""), minutes(10));
}

TEST(DeepSpeedTimeout, WholeMinutesAsPythonsIntTakesThem) {
  EXPECT_EQ(parse_deepspeed_timeout("1"), minutes(1));
  EXPECT_EQ(parse_deepspeed_timeout("30"), minutes(30));
  EXPECT_EQ(parse_deepspeed_timeout(" 5\n"), minutes(5));
  EXPECT_EQ(parse_deepspeed_timeout("+7"), minutes(7));
  EXPECT_EQ(parse_deepspeed_timeout("007"), minutes(7));
  EXPECT_EQ(parse_deepspeed_timeout("1_0"), minutes(10));
  EXPECT_EQ(parse_deepspeed_timeout("10000000"), minutes(10'000'000));
}

TEST(DeepSpeedTimeout, FractionsAreRefusedNotTruncated) {
  for (const char* v : {"0.5", "1.5", "2.", ".5", "1e1"}) {
    const std::string msg = refusal(v);
    EXPECT_NE(msg.find(std::string("DEEPSPEED_TIMEOUT='") + v + "': expected a whole number of minutes"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("fractions of a minute are not taken"), std::string::npos) << msg;
  }
}

TEST(DeepSpeedTimeout, ZeroAndNegativeAreRefused) {
  for (const char* v : {"0", "-1", "-0", "-30", " 0 "}) {
    const std::string msg = refusal(v);
    EXPECT_NE(msg.find(std::string("DEEPSPEED_TIMEOUT='") + v + "': expected at least 1 minute"), std::string::npos)
        << msg;
  }
}

TEST(DeepSpeedTimeout, MalformedIsRefused) {
  for (const char* v : {"2x", "x2", "ten", "1 0", "1__0", "_1", "1_", "++1", "+", "-", " ", "0x10", "10min"}) {
    const std::string msg = refusal(v);
    EXPECT_NE(msg.find(std::string("DEEPSPEED_TIMEOUT='") + v + "': expected a whole number of minutes"),
              std::string::npos)
        << msg;
  }
}

TEST(DeepSpeedTimeout, AbsurdlyLargeIsRefused) {
  for (const char* v : {"10000001", "99999999999999999999999999"}) {
    const std::string msg = refusal(v);
    EXPECT_NE(msg.find("expected at most 10000000 minutes"), std::string::npos) << msg;
  }
}

// The same holds for a timeout set from code: no rendezvous is tried with none.
TEST(DeepSpeedTimeout, NonPositiveTimeoutFromCodeIsRefused) {
  for (const auto ms : {0, -5}) {
    InitOptions options;
    options.timeout = std::chrono::milliseconds(ms);
    try {
      init_distributed(options);
      ADD_FAILURE() << "accepted a timeout of " << ms << " ms";
    } catch (const CommError& e) {
      EXPECT_NE(std::string(e.what()).find("InitOptions::timeout is " + std::to_string(ms) + " ms: expected more than 0"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace deepspeed::comm
