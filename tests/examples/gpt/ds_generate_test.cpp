// build/bin/ds_generate on a checkpoint gpt_train --save_dir just wrote (tiny model, ZeRO-2,
// trained on a repeating pattern): it continues the pattern; a missing checkpoint and a bad
// flag exit non-zero saying what is wrong.
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "multiprocess.h"

namespace ds_generate_test {

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;

const std::string kTrainer = DS_BINARY_DIR "/bin/gpt_train";
const std::string kGenerate = DS_BINARY_DIR "/bin/ds_generate";

deepspeed::testing::RankResult run_one(const std::string& program, const std::vector<std::string>& args) {
  return run_ranks(1, program, args, {.timeout = std::chrono::seconds(120), .env = {}}).at(0);
}

TEST(DsGenerate, ContinuesThePatternACheckpointWasTrainedOn) {
  TempDir dir;
  std::vector<uint16_t> tokens(4096);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>(i % 32);
  std::ofstream(dir.file("tokens.bin"), std::ios::binary)
      .write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(tokens.size() * 2));
  deepspeed::testing::write_file(dir.file("ds.json"), R"({"train_batch_size": 8, "steps_per_print": 1000,
      "optimizer": {"type": "AdamW", "params": {"lr": 0.003, "betas": [0.9, 0.95]}},
      "zero_optimization": {"stage": 2}})");
  const auto train = run_one(kTrainer, {"--model", "tiny", "--seq_len", "32", "--steps", "40", "--warmup_steps", "2",
                                        "--data", dir.file("tokens.bin"), "--deepspeed_config", dir.file("ds.json"),
                                        "--save_dir", dir.file("ckpt")});
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const auto gen = run_one(kGenerate, {"--checkpoint", dir.file("ckpt"), "--model", "tiny", "--seq_len", "32",
                                       "--prompt_ids", "3,4,5,6,7,8", "--max_new_tokens", "6"});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  EXPECT_NE(gen.output.find("tokens: 9,10,11,12,13,14"), std::string::npos) << gen.output;

  // Text prompts are bytes; a stop id ends the generation after it.
  const auto stopped = run_one(kGenerate, {"--checkpoint", dir.file("ckpt"), "--model", "tiny", "--seq_len", "32",
                                           "--prompt_ids", "3,4,5", "--max_new_tokens", "8", "--stop_ids", "7"});
  EXPECT_NE(stopped.output.find("tokens: 6,7\n"), std::string::npos) << stopped.output;
}

TEST(DsGenerate, BadPathsAndFlagsExitNonZeroSayingWhy) {
  TempDir dir;
  const auto missing = run_one(kGenerate, {"--checkpoint", dir.file("nothing"), "--prompt_ids", "1"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find(dir.file("nothing")), std::string::npos) << missing.output;
  const auto bad_ids = run_one(kGenerate, {"--checkpoint", dir.path(), "--prompt_ids", "1,x"});
  EXPECT_NE(bad_ids.exit_code, 0);
  EXPECT_NE(bad_ids.output.find("\"x\" is not a token id"), std::string::npos) << bad_ids.output;
  const auto no_prompt = run_one(kGenerate, {"--checkpoint", dir.path()});
  EXPECT_NE(no_prompt.exit_code, 0);
  EXPECT_NE(no_prompt.output.find("--prompt"), std::string::npos) << no_prompt.output;
  const auto bad_size = run_one(kGenerate, {"--checkpoint", dir.path(), "--model", "huge", "--prompt_ids", "1"});
  EXPECT_NE(bad_size.exit_code, 0);
  EXPECT_NE(bad_size.output.find("unknown GPT size"), std::string::npos) << bad_size.output;
}

}  // namespace ds_generate_test
