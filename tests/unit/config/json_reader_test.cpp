// Reading the JSON text itself: comments, duplicate keys, syntax errors with line:column,
// and the key locations later errors point to.
#include <gtest/gtest.h>

#include <deepspeed/config.h>

#include "config/json_reader.h"
#include "test_helpers.h"

namespace deepspeed {
namespace {

using config_detail::read_json;
using testing::config_error;

TEST(JsonReader, LineAndBlockCommentsAreAllowed) {
  const char* text = R"(// ds_config for the tutorial
{
  /* the global batch */ "train_batch_size": 16,  // per optimizer step
  "fp16": { /* on */ "enabled": true }
  /* trailing
     block */
}
)";
  const auto c = parse_config(text, 1, "ds_config.json");
  EXPECT_EQ(c.train_batch_size, 16);
  EXPECT_TRUE(c.fp16.enabled);
  EXPECT_FALSE(c.raw.contains("//"));
}

TEST(JsonReader, SlashesInsideStringsAreNotComments) {
  const auto parsed = read_json(R"({"_comment": "see https://example.com/a//b /* x */"})", "x.json");
  EXPECT_EQ(parsed.value["_comment"], "see https://example.com/a//b /* x */");
}

TEST(JsonReader, DuplicateKeyNamesKeyAndBothLines) {
  const char* text = "{\n  \"train_batch_size\": 8,\n  \"steps_per_print\": 1,\n  \"train_batch_size\": 16\n}";
  auto e = config_error(text);
  EXPECT_EQ(e.path(), "train_batch_size");
  EXPECT_STREQ(e.what(), "train_batch_size: duplicate key at ds_config.json:4:3 (first given at ds_config.json:2:3)");
}

TEST(JsonReader, NestedAndRepeatedDuplicatesAreAllReported) {
  const char* text = R"({
  "zero_optimization": {
    "stage": 1,
    "stage": 2
  },
  "fp16": {"enabled": true, "enabled": false}
})";
  auto e = config_error(text);
  EXPECT_EQ(e.path(), "zero_optimization.stage");
  EXPECT_STREQ(e.what(),
               "zero_optimization.stage: duplicate key at ds_config.json:4:5 (first given at ds_config.json:3:5); "
               "also duplicated: fp16.enabled at ds_config.json:6:29 (first given at ds_config.json:6:12)");
}

TEST(JsonReader, SameKeyInDifferentObjectsIsFine) {
  const auto parsed = read_json(R"({"a": {"enabled": true}, "b": {"enabled": false}, "c": [{"x": 1}, {"x": 2}]})", "x");
  EXPECT_EQ(parsed.value["c"][1]["x"], 2);
}

TEST(JsonReader, SyntaxErrorHasLineAndColumn) {
  // A missing comma: the error is at the second key's opening quote (line 3, column 3).
  auto e = config_error("{\n  \"train_batch_size\": 8\n  \"steps_per_print\": 1\n}");
  EXPECT_EQ(e.path(), "");
  const std::string what = e.what();
  EXPECT_EQ(what.rfind("ds_config.json:3:3: syntax error: ", 0), 0u) << what;
  EXPECT_NE(what.find("expected '}'"), std::string::npos) << what;
}

TEST(JsonReader, TrailingCommaIsASyntaxError) {
  const std::string what = config_error("{\"train_batch_size\": 8,\n}").what();
  EXPECT_EQ(what.rfind("ds_config.json:2:1: syntax error: ", 0), 0u) << what;
}

TEST(JsonReader, UnterminatedInputReportsTheEnd) {
  const std::string what = config_error("{\"train_batch_size\": 8").what();
  EXPECT_EQ(what.rfind("ds_config.json:1:", 0), 0u) << what;
  EXPECT_NE(what.find("syntax error"), std::string::npos);
  EXPECT_EQ(std::string(config_error("").what()).rfind("ds_config.json:1:1: syntax error: ", 0), 0u);
}

TEST(JsonReader, BadLiteralPointsAtIt) {
  const std::string what = config_error("{\n  \"fp16\": {\"enabled\": ture}\n}").what();
  EXPECT_EQ(what.rfind("ds_config.json:2:", 0), 0u) << what;
  EXPECT_NE(what.find("invalid literal"), std::string::npos) << what;
}

TEST(JsonReader, CrLfLineEndings) {
  auto e = config_error("{\r\n  \"train_batch_size\": 8,\r\n  \"train_batch_size\": 8\r\n}");
  EXPECT_NE(std::string(e.what()).find("at ds_config.json:3:3"), std::string::npos) << e.what();
}

TEST(JsonReader, KeyLocationsFollowThePath) {
  const auto parsed = read_json("{\n \"a\": {\n   \"b\\\"q\": [ {\"c\": 1} ]\n }\n}", "f.json");
  EXPECT_EQ(parsed.locations.describe("a"), "f.json:2:2");
  EXPECT_EQ(parsed.locations.describe("a.b\"q"), "f.json:3:4");  // escaped quote inside the key
  EXPECT_EQ(parsed.locations.describe("a.b\"q[0].c"), "f.json:3:15");
  // A key that was not written is located at its nearest written ancestor.
  EXPECT_EQ(parsed.locations.describe("a.missing"), "f.json:2:2");
  EXPECT_EQ(parsed.locations.describe("nowhere"), "");
}

TEST(JsonReader, TopLevelMustBeAnObject) {
  EXPECT_STREQ(config_error("[1, 2]").what(), "expected a JSON object at the top level, got [1,2]");
}

TEST(JsonReader, LoadConfigReadsFilesStringsAndBase64) {
  EXPECT_EQ(load_config("  {\"train_batch_size\": 4}", 2).train_micro_batch_size_per_gpu, 2);
  // base64url of {"train_batch_size": 4}
  EXPECT_EQ(load_config("eyJ0cmFpbl9iYXRjaF9zaXplIjogNH0", 1).train_batch_size, 4);
  try {
    load_config("/no/such/ds_config.json", 1);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("Expected a string path to an existing deepspeed config"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("/no/such/ds_config.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace deepspeed
