// How c10d's error texts are sorted into the cases the comm errors name (a timeout, a peer
// whose connection went away), from texts Gloo and NCCL print.
#include <gtest/gtest.h>

#include <chrono>

#include "comm/error_text.h"

namespace deepspeed::comm {
namespace {

TEST(CommErrorText, PeerGoneTextsFromGlooAndNccl) {
  EXPECT_TRUE(is_peer_gone_text("[./gloo/transport/tcp/pair.cc:598] Connection closed by peer [127.0.0.1]:39055"));
  EXPECT_TRUE(is_peer_gone_text("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection reset by peer"));
  EXPECT_TRUE(is_peer_gone_text("write: Broken pipe"));
  EXPECT_TRUE(is_peer_gone_text("NCCL communicator was aborted on rank 1"));
  EXPECT_FALSE(is_peer_gone_text("Timed out waiting 3000ms for recv operation to complete"));
  EXPECT_FALSE(is_peer_gone_text("Tensors must be contiguous"));
}

TEST(CommErrorText, TimeoutTexts) {
  EXPECT_TRUE(is_timeout_text("Timed out waiting 3000ms for recv operation to complete"));
  EXPECT_TRUE(is_timeout_text("Watchdog caught collective operation timeout"));
  EXPECT_TRUE(is_timeout_text("Socket Timeout"));
  EXPECT_FALSE(is_timeout_text("Connection closed by peer"));
}

TEST(CommErrorText, DurationsAsTheUserSetThem) {
  EXPECT_EQ(describe_duration(std::chrono::minutes(10)), "10 min");
  EXPECT_EQ(describe_duration(std::chrono::seconds(3)), "3 s");
  EXPECT_EQ(describe_duration(std::chrono::milliseconds(1500)), "1500 ms");
}

}  // namespace
}  // namespace deepspeed::comm
