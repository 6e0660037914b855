// Ulysses sequence parallelism on CPU ranks over Gloo: a causal attention block whose attention
// is DistributedAttention trains, with each rank holding a slice of every sequence, as the
// whole model on one rank: the same step losses (rtol 1e-5), gradient norms and final weights,
// for sequence_parallel_size 2 (2 ranks) and 2 sequence x 2 data (4 ranks), ZeRO stages 0-3.
// And the Megatron layers (tensor_parallel_layers_worker) equal the unsplit ones on 2 and 4 ranks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gloo_ranks_test.h"
#include "multiprocess.h"
#include "rank_results.h"

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

namespace {

const std::string kUlyssesWorker = DS_BINARY_DIR "/bin/ds_test_ulysses_worker";
const std::string kLayersWorker = DS_BINARY_DIR "/bin/ds_test_tensor_parallel_layers_worker";

std::vector<std::vector<torch::Tensor>> ulysses_train(int world, int sp, int stage, TempDir& dir, const std::string& name) {
  const std::string cfg = dir.file(name + ".json");
  write_file(cfg, R"({"train_batch_size": 8, "steps_per_print": 100, "gradient_clipping": 0.05,
      "sequence_parallel_size": )" + std::to_string(sp) +
                      R"(, "optimizer": {"type": "Adam", "params": {"lr": 0.01}}, "zero_optimization": {"stage": )" +
                      std::to_string(stage) + "}}");
  const auto ranks = run_ranks(world, kUlyssesWorker, {"--deepspeed_config", cfg, "--out", dir.file(name)});
  if (!deepspeed::testing::expect_ranks_succeeded(ranks, name)) return {};
  return deepspeed::testing::load_rank_results(dir.file(name), world);
}

}  // namespace

class Ulysses : public deepspeed::testing::GlooRanksTest,
                public ::testing::WithParamInterface<std::tuple<int, int>> {};

TEST_P(Ulysses, SequenceSlicesTrainAsTheWholeSequenceOnOneRank) {
  const auto [world, stage] = GetParam();
  TempDir dir;
  const auto reference = ulysses_train(1, 1, 0, dir, "reference");
  ASSERT_EQ(reference.size(), 1u);
  EXPECT_GT(reference[0][1].min().item<double>(), 0.05) << "clipping acts on every step";
  const auto runs = ulysses_train(world, 2, stage, dir, "split");
  ASSERT_EQ(runs.size(), static_cast<size_t>(world));
  const auto& ref = reference[0];
  for (int r = 0; r < world; ++r) {
    const auto& got = runs[r];
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_TRUE(torch::allclose(got[0], ref[0], 1e-5, 0)) << "rank " << r << " losses\n" << got[0] << "\n" << ref[0];
    EXPECT_TRUE(torch::allclose(got[1], ref[1], 1e-5, 0)) << "rank " << r << " norms\n" << got[1] << "\n" << ref[1];
    for (size_t i = 2; i + 1 < got.size(); ++i) {
      // fp32 sums in another order: within 1e-5 of the tensor's largest element.
      const double atol = 1e-5 * ref[i].abs().max().item<double>() + 1e-6;
      EXPECT_TRUE(torch::allclose(got[i], ref[i], 1e-5, atol))
          << "rank " << r << " parameter " << i << ": largest difference "
          << (got[i] - ref[i]).abs().max().item<double>() << " of " << ref[i].abs().max().item<double>();
    }
    EXPECT_EQ(got.back()[1].item<int64_t>(), 2) << "sequence_parallel_size";
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, Ulysses,
                         ::testing::Values(std::make_tuple(2, 0), std::make_tuple(2, 3), std::make_tuple(4, 1),
                                           std::make_tuple(4, 2), std::make_tuple(4, 3)),
                         [](const auto& info) {
                           return "World" + std::to_string(std::get<0>(info.param)) + "Stage" +
                                  std::to_string(std::get<1>(info.param));
                         });

using TensorParallelLayers = deepspeed::testing::GlooRanksTest;

TEST_F(TensorParallelLayers, EqualTheUnsplitLayersOnTwoAndFourRanks) {
  for (int world : {2, 4}) {
    deepspeed::testing::expect_ranks_succeeded(run_ranks(world, kLayersWorker, {}), std::to_string(world) + " ranks,");
  }
}
