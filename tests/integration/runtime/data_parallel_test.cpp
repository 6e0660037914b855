// Data parallelism on loopback (Gloo): the same global batch on 1, 2 and 3 ranks must end
// in the same parameters; logs come from rank 0 only.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gpu_per_rank.h"
#include "multiprocess.h"

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

namespace {

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_train_worker";

std::string config(int micro, int gas, const std::string& extra = "") {
  return R"({"train_micro_batch_size_per_gpu": )" + std::to_string(micro) +
         R"(, "gradient_accumulation_steps": )" + std::to_string(gas) +
         R"(, "steps_per_print": 5, "optimizer": {"type": "Adam", "params": {"lr": 0.01}})" + extra + "}";
}

std::vector<torch::Tensor> load_params(const std::string& path) {
  std::vector<torch::Tensor> params;
  torch::load(params, path);
  return params;
}

// Runs world_size ranks and returns rank 0's final parameters.
std::vector<torch::Tensor> train(int world_size, const std::string& cfg, TempDir& dir,
                                 std::vector<deepspeed::testing::RankResult>* results = nullptr) {
  const std::string cfg_path = dir.file("ds_config_w" + std::to_string(world_size) + ".json");
  write_file(cfg_path, cfg);
  const std::string out = dir.file("params_w" + std::to_string(world_size));
  auto r = run_ranks(world_size, kWorker, {"--deepspeed_config", cfg_path, "--steps", "20", "--out", out});
  for (const auto& rank : r) {
    EXPECT_FALSE(rank.timed_out) << "rank " << rank.rank << " hung:\n" << rank.output;
    EXPECT_EQ(rank.exit_code, 0) << "rank " << rank.rank << ":\n" << rank.output;
  }
  if (results) *results = r;
  auto p0 = load_params(out + ".rank0.pt");
  for (int k = 1; k < world_size; ++k) {
    auto pk = load_params(out + ".rank" + std::to_string(k) + ".pt");
    for (std::size_t i = 0; i < p0.size(); ++i) {
      EXPECT_TRUE(torch::equal(p0[i], pk[i])) << "rank " << k << " diverged from rank 0 in parameter " << i;
    }
  }
  return p0;
}

void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], /*rtol=*/1e-5, /*atol=*/1e-6))
        << "parameter " << i << " max diff " << (a[i] - b[i]).abs().max().item<double>();
  }
}

}  // namespace

TEST(DataParallel, TwoRanksWithAccumulationMatchOneRank) {
  TempDir dir;
  auto one = train(1, config(8, 2), dir);
  std::vector<deepspeed::testing::RankResult> results;
  auto two = train(2, config(4, 2), dir, &results);
  expect_close(one, two);
  // Logs from rank 0 only.
  EXPECT_NE(results[0].output.find("step=5, skipped=0"), std::string::npos) << results[0].output;
  EXPECT_NE(results[0].output.find("DeepSpeedEngine configuration:"), std::string::npos);
  EXPECT_EQ(results[1].output.find("step="), std::string::npos) << results[1].output;
  EXPECT_EQ(results[1].output.find("DeepSpeedEngine configuration:"), std::string::npos);
}

TEST(DataParallel, ThreeRanksMatchOneRank) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(3);
  TempDir dir;
  auto one = train(1, config(12, 2), dir);
  auto three = train(3, config(4, 2), dir);
  expect_close(one, three);
}

TEST(DataParallel, ClippingAndScheduleMatchAcrossWorldSizes) {
  TempDir dir;
  const std::string extra =
      R"(, "gradient_clipping": 0.5, "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 10, "warmup_max_lr": 0.02}})";
  auto one = train(1, config(8, 1, extra), dir);
  auto two = train(2, config(4, 1, extra), dir);
  expect_close(one, two);
}

TEST(DataParallel, BadConfigFailsEveryRankWithTheKeyNamed) {
  TempDir dir;
  const std::string cfg_path = dir.file("bad.json");
  write_file(cfg_path, R"({"train_batch_size": 16, "train_micro_batch_size_per_gpu": 3, "optimizer": {"type": "Adam"}})");
  auto r = run_ranks(2, kWorker, {"--deepspeed_config", cfg_path, "--steps", "2"});
  for (const auto& rank : r) {
    EXPECT_FALSE(rank.timed_out) << rank.output;
    EXPECT_EQ(rank.exit_code, 1) << rank.output;
    EXPECT_NE(rank.output.find("train_batch_size"), std::string::npos) << rank.output;
  }
}

// The config is read before the rendezvous: rank 0 of a two-rank job whose peer never comes
// reports the bad key at once instead of waiting out the timeout. A rank that read the config
// after connecting could exit while its peer was still creating the group, and the peer would
// fail with "Connection closed by peer" instead of naming the key.
TEST(DataParallel, BadConfigFailsBeforeWaitingForPeers) {
  TempDir dir;
  const std::string cfg_path = dir.file("bad.json");
  write_file(cfg_path, R"({"train_batch_size": 16, "train_micro_batch_size_per_gpu": 3, "optimizer": {"type": "Adam"}})");
  deepspeed::testing::RunOptions options;
  options.timeout = std::chrono::seconds(30);
  options.env = {{"WORLD_SIZE", "2"}, {"LOCAL_SIZE", "2"}};
  auto r = run_ranks(1, kWorker, {"--deepspeed_config", cfg_path, "--steps", "2"}, options);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].timed_out) << r[0].output;
  EXPECT_EQ(r[0].exit_code, 1) << r[0].output;
  EXPECT_NE(r[0].output.find("train_batch_size"), std::string::npos) << r[0].output;
}
