#include "launcher/world_info.h"

#include "test_util.h"

namespace deepspeed::launcher {
namespace {

TEST(WorldInfo, MatchesPythonJsonDumpsAndUrlsafeB64) {
  const Resources r = {{"localhost", {0, 1}}};
  EXPECT_EQ(world_info_json(r), R"({"localhost": [0, 1]})");
  EXPECT_EQ(encode_world_info(r), "eyJsb2NhbGhvc3QiOiBbMCwgMV19");
}

TEST(WorldInfo, MultiNodeAndPadding) {
  // python3 -c 'import json,base64;print(base64.urlsafe_b64encode(json.dumps({"worker-0":[0,1,2,3],"worker-1":[0,3]}).encode()).decode())'
  const Resources r = {{"worker-0", {0, 1, 2, 3}}, {"worker-1", {0, 3}}};
  EXPECT_EQ(world_info_json(r), R"({"worker-0": [0, 1, 2, 3], "worker-1": [0, 3]})");
  EXPECT_EQ(encode_world_info(r), "eyJ3b3JrZXItMCI6IFswLCAxLCAyLCAzXSwgIndvcmtlci0xIjogWzAsIDNdfQ==");
  EXPECT_EQ(encode_world_info({{"a", {0}}}), "eyJhIjogWzBdfQ==");
}

TEST(WorldInfo, UrlsafeAlphabet) {
  // bytes 0xfb 0xff -> "-_8=" url-safe (standard: "+/8=")
  EXPECT_EQ(base64_urlsafe_encode("\xfb\xff"), "-_8=");
  EXPECT_EQ(base64_urlsafe_decode("-_8="), "\xfb\xff");
  EXPECT_EQ(base64_urlsafe_decode("+/8="), "\xfb\xff");
  EXPECT_EQ(base64_urlsafe_encode(""), "");
  EXPECT_EQ(base64_urlsafe_encode("f"), "Zg==");
  EXPECT_EQ(base64_urlsafe_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_urlsafe_encode("foo"), "Zm9v");
}

TEST(WorldInfo, NonAsciiHostEscapedAsJsonDumps) {
  // json.dumps({"hö": [0]}) == '{"h\\u00f6": [0]}'
  EXPECT_EQ(world_info_json({{"h\xc3\xb6", {0}}}), R"({"h\u00f6": [0]})");
}

TEST(WorldInfo, RoundTripKeepsOrder) {
  const Resources r = {{"zeta", {1, 2}}, {"alpha", {0}}, {"mid", {0, 1, 2, 3, 4, 5, 6, 7}}};
  EXPECT_EQ(decode_world_info(encode_world_info(r)), r);
}

TEST(WorldInfo, DecodeErrors) {
  testing::expect_launch_error([] { decode_world_info("None"); }, "world_info can not be None");
  testing::expect_launch_error([] { decode_world_info("!!!!"); }, "not a base64 character");
  testing::expect_launch_error([] { decode_world_info(base64_urlsafe_encode("[1, 2]")); }, "non-empty");
  testing::expect_launch_error([] { decode_world_info(base64_urlsafe_encode("{\"a\": [\"x\"]}")); }, "integer");
  testing::expect_launch_error([] { decode_world_info(base64_urlsafe_encode("{\"a\": [0")); }, "not valid JSON");
  // Slot ids index accelerators: negative or huge ones were accepted (and truncated to int).
  testing::expect_launch_error([] { decode_world_info(base64_urlsafe_encode("{\"a\": [-1]}")); },
                               "world_info: slot -1 of 'a' is not a slot id (0 to 4095)");
  testing::expect_launch_error([] { decode_world_info(base64_urlsafe_encode("{\"a\": [0, 4294967296]}")); },
                               "slot 4294967296 of 'a' is not a slot id");
}

}  // namespace
}  // namespace deepspeed::launcher
