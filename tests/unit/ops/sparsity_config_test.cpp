// The sparsity configurations against layouts DeepSpeed's own classes produced for the same
// parameters (random blocks after Python's random.seed(seed)), written out block by block; and
// DeepSpeed's errors.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <deepspeed/config.h>
#include <deepspeed/errors.h>
#include <deepspeed/sparsity_config.h>

namespace {

using namespace deepspeed::ops::sparse_attention;

struct LayoutCase {
  const char* name;
  const char* config;  // the sparse_attention section plus num_heads
  int64_t seq_len;
  std::vector<std::string> rows;  // every head's row blocks, head after head
};

// DeepSpeed's layouts (deepspeed/ops/sparse_attention/sparsity_config.py) for these configs.
const std::vector<LayoutCase>& cases() {
  static const std::vector<LayoutCase> c = {
    {"DenseThreeBlocks", R"({"mode": "dense", "num_heads": 1, "block": 16})", 48,
     {"111",
         "111",
         "111"}},
    {"FixedShortLastWindow", R"({"mode": "fixed", "num_heads": 1, "block": 16})", 160,
     {"1111000101",
         "1111000101",
         "1111000101",
         "1111000101",
         "0001111101",
         "0001111101",
         "0001111101",
         "0001111101",
         "0001000111",
         "0001000111"}},
    {"FixedUnidirectionalTwoGlobal", R"({"mode": "fixed", "num_heads": 1, "block": 16, "num_local_blocks": 4, "num_global_blocks": 2, "attention": "unidirectional"})", 160,
     {"1000000000",
         "1100000000",
         "1111000000",
         "1111000000",
         "0011100000",
         "0011110000",
         "0011111100",
         "0011111100",
         "0011001111",
         "0011001111"}},
    {"FixedHorizontalGlobal", R"({"mode": "fixed", "num_heads": 1, "block": 32, "num_local_blocks": 3, "horizontal_global_attention": true})", 192,
     {"111001",
         "111001",
         "111111",
         "001111",
         "001111",
         "111111"}},
    {"FixedGlobalPatternsPerHead", R"({"mode": "fixed", "num_heads": 3, "block": 16, "num_local_blocks": 4, "num_global_blocks": 1, "different_layout_per_head": true, "num_different_global_patterns": 2})", 128,
     {"11110001",
         "11110001",
         "11110001",
         "11110001",
         "00011111",
         "00011111",
         "00011111",
         "00011111",
         "11110010",
         "11110010",
         "11110010",
         "11110010",
         "00101111",
         "00101111",
         "00101111",
         "00101111",
         "11110001",
         "11110001",
         "11110001",
         "11110001",
         "00011111",
         "00011111",
         "00011111",
         "00011111"}},
    {"VariableRandomWindowsRanges", R"({"mode": "variable", "num_heads": 2, "block": 16, "different_layout_per_head": true, "num_random_blocks": 2, "local_window_blocks": [2, 3], "global_block_indices": [0, 5], "global_block_end_indices": [1, 7], "seed": 7})", 160,
     {"1110011000",
         "1100011000",
         "1111111010",
         "1111111000",
         "1011111001",
         "1001011110",
         "1100011100",
         "1000011101",
         "1101011011",
         "1100011011",
         "1100011000",
         "1100011001",
         "1011111000",
         "1011111001",
         "1011111000",
         "1000011110",
         "1010111100",
         "1010011100",
         "1100011011",
         "1000111011"}},
    {"VariableUnidirectional", R"({"mode": "variable", "num_heads": 1, "block": 16, "num_random_blocks": 1, "local_window_blocks": [3], "global_block_indices": [2], "attention": "unidirectional", "seed": 0})", 128,
     {"10000010",
         "11000010",
         "11100000",
         "00111000",
         "00111001",
         "00111110",
         "00101010",
         "00100011"}},
    {"BigBirdDefaults", R"({"mode": "bigbird", "num_heads": 1, "block": 16, "seed": 0})", 128,
     {"11111111",
         "11100010",
         "11110000",
         "10111000",
         "10011101",
         "10001110",
         "10001111",
         "10000011"}},
    {"BigBirdUnidirectionalPerHead", R"({"mode": "bigbird", "num_heads": 2, "block": 16, "different_layout_per_head": true, "attention": "unidirectional", "num_global_blocks": 2, "seed": 3})", 128,
     {"10000000",
         "11000000",
         "11100000",
         "11110000",
         "11011000",
         "11001100",
         "11001110",
         "11000011",
         "10000000",
         "11000000",
         "11100000",
         "11110000",
         "11011000",
         "11001100",
         "11010110",
         "11000011"}},
    {"BSLongformerRanges", R"({"mode": "bslongformer", "num_heads": 1, "block": 16, "num_sliding_window_blocks": 5, "global_block_indices": [0, 6], "global_block_end_indices": [2, 9]})", 128,
     {"11111111",
         "11111111",
         "11111011",
         "11111111",
         "11111111",
         "11011111",
         "11111111",
         "11111111"}},
    {"BSLongformerUnidirectional", R"({"mode": "bslongformer", "num_heads": 1, "block": 16, "global_block_indices": [3], "attention": "unidirectional"})", 96,
     {"100000",
         "110000",
         "011000",
         "111100",
         "000110",
         "000111"}},
    {"LocalSlidingWindowCausal", R"({"mode": "local_sliding_window", "num_heads": 2, "block": 16, "num_sliding_window_blocks": 5})", 96,
     {"100000",
         "110000",
         "111000",
         "011100",
         "001110",
         "000111",
         "100000",
         "110000",
         "111000",
         "011100",
         "001110",
         "000111"}},
    {"LocalSlidingWindowBidirectional", R"({"mode": "local_sliding_window", "num_heads": 1, "block": 16, "num_sliding_window_blocks": 3, "attention": "bidirectional"})", 96,
     {"110000",
         "111000",
         "011100",
         "001110",
         "000111",
         "000011"}},
  };
  return c;
}

std::shared_ptr<const SparsityConfig> config_of(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text);
  const int64_t heads = j.at("num_heads");
  j.erase("num_heads");
  return make_sparsity_config(deepspeed::read_sparse_attention_config(j), heads);
}

std::vector<std::string> rows_of(const SparsityLayout& layout) {
  std::vector<std::string> rows;
  for (int64_t h = 0; h < layout.heads(); ++h) {
    for (int64_t r = 0; r < layout.blocks(); ++r) {
      std::string row;
      for (int64_t c = 0; c < layout.blocks(); ++c) row += layout.at(h, r, c) ? '1' : '0';
      rows.push_back(row);
    }
  }
  return rows;
}

TEST(SparsityConfig, LayoutsAreDeepSpeedsBlockForBlock) {
  for (const LayoutCase& c : cases()) {
    const auto config = config_of(c.config);
    EXPECT_EQ(rows_of(config->make_layout(c.seq_len)), c.rows) << c.name << ": " << c.config;
  }
}

TEST(SparsityConfig, RandomBlocksFollowTheSeed) {
  const auto a = config_of(R"({"mode": "bigbird", "num_heads": 1, "num_random_blocks": 2, "seed": 1})");
  const auto b = config_of(R"({"mode": "bigbird", "num_heads": 1, "num_random_blocks": 2, "seed": 2})");
  EXPECT_EQ(a->make_layout(512), a->make_layout(512));
  EXPECT_NE(a->make_layout(512), b->make_layout(512));
}

TEST(SparsityConfig, LeadingCornerIsWhatTheOpUsesForShorterSequences) {
  const auto fixed = config_of(R"({"mode": "fixed", "num_heads": 2})");
  const SparsityLayout master = fixed->make_layout(256);
  const SparsityLayout corner = master.leading(4);
  EXPECT_EQ(corner.blocks(), 4);
  EXPECT_EQ(rows_of(corner), rows_of(fixed->make_layout(64)));
  EXPECT_THROW(master.leading(17), deepspeed::OpError);
}

TEST(SparsityConfig, OptionsTakeDesignatedInitializers) {
  const FixedSparsityConfig fixed(FixedOptions{{.num_heads = 3, .block = 32}});
  EXPECT_EQ(fixed.num_heads(), 3);
  EXPECT_EQ(fixed.block(), 32);
  EXPECT_EQ(fixed.options().num_local_blocks, 4);  // DeepSpeed's default
  EXPECT_EQ(fixed.make_layout(64).heads(), 3);
}

TEST(SparsityConfig, DensityAndJson) {
  const auto dense = config_of(R"({"mode": "dense", "num_heads": 2})");
  EXPECT_DOUBLE_EQ(dense->make_layout(32).density(), 1.0);
  const auto local = config_of(R"({"mode": "local_sliding_window", "num_heads": 1, "num_sliding_window_blocks": 1})");
  const SparsityLayout diagonal = local->make_layout(64);
  EXPECT_DOUBLE_EQ(diagonal.density(), 0.25);
  EXPECT_EQ(nlohmann::json::parse(diagonal.to_json()),
            nlohmann::json::parse("[[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]]"));
}

// Each bad config fails with DeepSpeed's message (prefixed by the class).
void expect_error(const std::string& config, int64_t seq_len, const std::string& message) {
  try {
    config_of(config)->make_layout(seq_len);
    ADD_FAILURE() << config << ": no error";
  } catch (const deepspeed::Error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

TEST(SparsityConfig, DeepSpeedsErrors) {
  expect_error(R"({"mode": "fixed", "num_heads": 1})", 100,
               "SparsityConfig: Sequence Length, 100, needs to be dividable by Block size 16!");
  expect_error(R"({"mode": "fixed", "num_heads": 1, "num_local_blocks": 5, "num_global_blocks": 2})", 160,
               "Number of blocks in a local window, 5, must be dividable by number of global blocks, 2!");
  expect_error(R"({"mode": "fixed", "num_heads": 1, "attention": "causal"})", 160,
               "only \"uni/bi-directional\" attentions are supported for now!");
  expect_error(R"({"mode": "fixed", "num_heads": 1, "attention": "unidirectional", "horizontal_global_attention": true})",
               160, "only \"bi-directional\" attentions can support horizontal global attention!");
  expect_error(R"({"mode": "fixed", "num_heads": 2, "num_different_global_patterns": 2})", 160,
               "Number of different layouts cannot be more than one when you have set a single layout for all heads!");
  expect_error(R"({"mode": "fixed", "num_heads": 2, "different_layout_per_head": true, "num_different_global_patterns": 5})",
               160, "(num_different_global_patterns), 5, cannot be larger than number of local window blocks divided by "
                    "number of global blocks, 4 / 1 = 4!");
  expect_error(R"({"mode": "variable", "num_heads": 1, "global_block_indices": [0, 4], "global_block_end_indices": [2]})",
               160, "Global block start indices length, 2, must be same as global block end indices length, 1!");
  expect_error(R"({"mode": "bslongformer", "num_heads": 1, "global_block_indices": [3], "global_block_end_indices": [3]})",
               160, "Global block start index, 3, must be smaller than global block end index, 3!");
  expect_error(R"({"mode": "variable", "num_heads": 1, "num_random_blocks": 4})", 48,
               "Number of random blocks, 4, must be smaller than overall number of blocks in a row, 3!");
  expect_error(R"({"mode": "bigbird", "num_heads": 1, "num_sliding_window_blocks": 5})", 64,
               "Number of sliding window blocks, 5, must be smaller than overall number of blocks in a row, 4!");
  expect_error(R"({"mode": "bigbird", "num_heads": 1, "num_random_blocks": 0, "num_global_blocks": 5})", 64,
               "Number of global blocks, 5, must be smaller than overall number of blocks in a row, 4!");
  expect_error(R"({"mode": "bigbird", "num_heads": 1, "num_random_blocks": 2, "attention": "unidirectional"})", 64,
               "Sample larger than population or is negative");
  expect_error(R"({"mode": "sparse", "num_heads": 1})", 64, "Given sparsity mode, sparse, has not been implemented yet!");
  expect_error(R"({"mode": "bigbird", "num_heads": 1, "num_local_blocks": 4})", 64,
               "sparse_attention.num_local_blocks: unknown key");
  expect_error(R"({"mode": "dense", "num_heads": 0})", 64, "num_heads must be at least 1, got 0");
}

}  // namespace
