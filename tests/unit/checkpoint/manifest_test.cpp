// The parts of src/checkpoint/ that need no LibTorch: DeepSpeed's file names, CRC32 and the
// manifest (ds_manifest.json), which a load trusts to find damaged files. Also built under
// ASan/UBSan by tests/sanitize, with tests/fuzz/fuzz_manifest.cpp's findings as regressions.
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <deepspeed/errors.h>

#include "checkpoint/checksum.h"
#include "checkpoint/layout.h"
#include "checkpoint/manifest.h"
#include "checkpoint_test_helpers.h"

namespace ck = deepspeed::checkpoint;
using deepspeed::testing::error_of;
using deepspeed::testing::span_of;

TEST(CheckpointLayout, DeepSpeedFileNames) {
  EXPECT_EQ(ck::default_tag(20), "global_step20");
  EXPECT_EQ(ck::model_states_file_name(0), "mp_rank_00_model_states.pt");
  EXPECT_EQ(ck::zero_model_states_file_name(3, 1), "zero_pp_rank_3_mp_rank_01_model_states.pt");
  EXPECT_EQ(ck::zero_optim_states_file_name(2, 0, false), "zero_pp_rank_2_mp_rank_00_optim_states.pt");
  EXPECT_EQ(ck::zero_optim_states_file_name(2, 0, true), "bf16_zero_pp_rank_2_mp_rank_00_optim_states.pt");
  using V = std::vector<std::string>;
  EXPECT_EQ(ck::files_written_by(0, 0, 0, false), V{"mp_rank_00_model_states.pt"});
  EXPECT_EQ(ck::files_written_by(0, 1, 0, false), V{});
  EXPECT_EQ(ck::files_written_by(2, 1, 0, false), V{"zero_pp_rank_1_mp_rank_00_optim_states.pt"});
  EXPECT_EQ(ck::files_written_by(3, 1, 0, true),
            (V{"zero_pp_rank_1_mp_rank_00_model_states.pt", "bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt"}));
  for (const char* bad : {"", "a/b", "..", "x.partial"}) {
    EXPECT_NE(error_of([&] { ck::check_tag(bad); }).find("cannot be used"), std::string::npos) << bad;
  }
  EXPECT_EQ(error_of([] { ck::check_tag("0.123456"); }), "(no error)");
}

TEST(CheckpointChecksum, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(ck::crc32_hex(span_of("123456789")), "cbf43926");  // the CRC-32/ISO-HDLC check value
  EXPECT_EQ(ck::crc32_hex(span_of("")), "00000000");
  // Long inputs go through the 8-byte loop; a flipped bit anywhere changes the value.
  std::string big(1000, 'x');
  const auto crc = ck::crc32_of(span_of(big));
  big[997] = 'y';
  EXPECT_NE(ck::crc32_of(span_of(big)), crc);
}

TEST(CheckpointManifest, RoundTripAndVerification) {
  const std::string data = "some checkpoint bytes";
  ck::Manifest m;
  m.tag = "global_step3";
  m.dp_world_size = 4;
  m.files.emplace("a.pt", ck::describe_file("a.pt", span_of(data), 2));
  const auto text = m.to_text();
  const auto back = ck::Manifest::parse(span_of(text), "m.json");
  EXPECT_EQ(back.tag, "global_step3");
  EXPECT_EQ(back.dp_world_size, 4);
  ASSERT_EQ(back.files.count("a.pt"), 1u);
  EXPECT_EQ(back.files.at("a.pt").rank, 2);
  EXPECT_EQ(error_of([&] { back.verify("a.pt", span_of(data), "dir/a.pt"); }), "(no error)");
  EXPECT_NE(error_of([&] { back.verify("a.pt", span_of(data.substr(0, 4)), "dir/a.pt"); })
                .find("dir/a.pt is truncated: 4 bytes, the manifest says 21"),
            std::string::npos);
  auto flipped = data;
  flipped[3] ^= 1;
  EXPECT_NE(error_of([&] { back.verify("a.pt", span_of(flipped), "dir/a.pt"); }).find("dir/a.pt is corrupt: CRC32"),
            std::string::npos);
  EXPECT_NE(error_of([&] { back.verify("b.pt", span_of(data), "dir/b.pt"); }).find("not listed"), std::string::npos);
  EXPECT_NE(error_of([&] { ck::Manifest::parse(span_of(text.substr(0, 30)), "m.json"); }).find("m.json is corrupt"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ck::Manifest::parse(span_of(R"({"format": "deepspeed-cpp checkpoint"})"), "m.json"); })
                .find("m.json is corrupt"),
            std::string::npos);
  const auto entries = ck::decode_entries(ck::encode_entries({m.files.at("a.pt")}));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].crc32, m.files.at("a.pt").crc32);
}

// Found by fuzzing (tests/fuzz/fuzz_manifest.cpp): a damaged number, e.g. "size":
// 18446744073709551616 (parsed as a float), was cast to an integer, which is undefined
// behaviour. Every number is now checked and a bad one is reported as damage.
TEST(CheckpointManifest, DamagedNumbersAreCorruptionNotUndefinedBehaviour) {
  const auto manifest = [](const std::string& top, const std::string& entry) {
    return R"({"format": "deepspeed-cpp checkpoint", "version": 1, "tag": "t", )" + top +
           R"(, "files": {"a.pt": {"crc32": "00000000", )" + entry + "}}}";
  };
  const std::string good_top = R"("zero_stage": 0, "dp_world_size": 2, "mp_world_size": 1)";
  const std::string good_entry = R"("rank": 0, "size": 3)";
  EXPECT_EQ(error_of([&] { ck::Manifest::parse(span_of(manifest(good_top, good_entry)), "m.json"); }), "(no error)");
  EXPECT_EQ(error_of([&] { ck::Manifest::parse(span_of(manifest(good_top, R"("rank": 0, "size": 18446744073709551616)")),
                                               "m.json"); }),
            "checkpoint manifest m.json is corrupt (\"size\" is 1.8446744073709552e+19, expected an integer >= 0)");
  EXPECT_NE(error_of([&] { ck::Manifest::parse(span_of(manifest(good_top, R"("rank": 0, "size": -1)")), "m.json"); })
                .find("\"size\" is -1, expected an integer >= 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ck::Manifest::parse(span_of(manifest(good_top, R"("rank": 1e300, "size": 1)")), "m.json"); })
                .find("\"rank\" is 1e+300, expected an integer from 0 to 2147483648"),
            std::string::npos);
  for (const std::string top : {R"("zero_stage": 4, "dp_world_size": 2, "mp_world_size": 1)",
                                R"("zero_stage": 0, "dp_world_size": 0, "mp_world_size": 1)",
                                R"("zero_stage": 0.5, "dp_world_size": 2, "mp_world_size": 1)"}) {
    EXPECT_NE(error_of([&] { ck::Manifest::parse(span_of(manifest(top, good_entry)), "m.json"); }).find("m.json is corrupt"),
              std::string::npos)
        << top;
  }
  EXPECT_NE(error_of([] {
              ck::Manifest::parse(span_of(R"({"format": "deepspeed-cpp checkpoint", "version": 1e300})"), "m.json");
            }).find("\"version\" is 1e+300"),
            std::string::npos);
}
