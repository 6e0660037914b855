// Activation checkpointing on 2 CPU ranks over Gloo, each run against the same training without
// checkpointing (same seed, dropout 0.25): the same step losses, gradient norms and final
// weights bit for bit in fp32, at ZeRO stages 0-3 and with gradient accumulation; within bf16's
// rounding in bf16. partition_activations over a model-parallel group of 2: the same numbers,
// and each rank holds half the saved bytes; cpu_checkpointing: the same numbers, the saved
// inputs in host memory.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gloo_ranks_test.h"
#include "multiprocess.h"

// A named namespace: this binary's test files are compiled together (unity build).
namespace activation_checkpointing_integration {

using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_activation_checkpointing_worker";

struct Run {
  torch::Tensor losses, norms, weights, bytes;  // bytes: {device, host} held after a forward
};
struct RankRuns {
  Run reference, checkpointed;
};

std::vector<RankRuns> run_pair(const std::vector<std::string>& extra, const std::string& name) {
  TempDir dir;
  std::vector<std::string> args{"--out", dir.file(name)};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto ranks = run_ranks(2, kWorker, args);
  std::vector<RankRuns> out;
  for (const auto& r : ranks) {
    EXPECT_FALSE(r.timed_out) << name << " rank " << r.rank << " hung:\n" << r.output;
    EXPECT_EQ(r.exit_code, 0) << name << " rank " << r.rank << ":\n" << r.output;
  }
  if (::testing::Test::HasFailure()) return out;
  for (int k = 0; k < 2; ++k) {
    std::vector<torch::Tensor> t;
    torch::load(t, dir.file(name) + ".rank" + std::to_string(k) + ".pt");
    out.push_back({{t[0], t[1], t[2], t[3]}, {t[4], t[5], t[6], t[7]}});
  }
  return out;
}

void expect_identical(const RankRuns& r, const std::string& what) {
  EXPECT_TRUE(torch::equal(r.checkpointed.losses, r.reference.losses))
      << what << " losses\n" << r.checkpointed.losses << "\n" << r.reference.losses;
  EXPECT_TRUE(torch::equal(r.checkpointed.norms, r.reference.norms))
      << what << " gradient norms\n" << r.checkpointed.norms << "\n" << r.reference.norms;
  EXPECT_TRUE(torch::equal(r.checkpointed.weights, r.reference.weights))
      << what << " final weights differ by up to "
      << (r.checkpointed.weights - r.reference.weights).abs().max().item<double>();
}

int64_t device_bytes(const Run& r) { return r.bytes[0].item<int64_t>(); }
int64_t host_bytes(const Run& r) { return r.bytes[1].item<int64_t>(); }

class ActivationCheckpointingZero : public deepspeed::testing::GlooRanksTest,
                                    public ::testing::WithParamInterface<std::tuple<int, int>> {};

TEST_P(ActivationCheckpointingZero, Fp32GradientsAreBitIdenticalWithDropout) {
  const auto [stage, gas] = GetParam();
  const std::string what = "stage " + std::to_string(stage) + ", accumulation " + std::to_string(gas);
  const auto runs = run_pair({"--stage", std::to_string(stage), "--gas", std::to_string(gas)}, "zero");
  ASSERT_EQ(runs.size(), 2u);
  for (int k = 0; k < 2; ++k) expect_identical(runs[k], what + ", rank " + std::to_string(k));
  // The reference keeps nothing in checkpoints; the checkpointed run keeps the block inputs.
  EXPECT_EQ(host_bytes(runs[0].reference), 0);
  EXPECT_GT(host_bytes(runs[0].checkpointed), 0);
  // Dropout really draws: the two ranks see different samples and end with the same weights
  // (data parallel), and the losses go somewhere.
  EXPECT_TRUE(torch::equal(runs[0].checkpointed.weights, runs[1].checkpointed.weights)) << what;
}

INSTANTIATE_TEST_SUITE_P(StagesAndAccumulation, ActivationCheckpointingZero,
                         ::testing::Values(std::make_tuple(0, 1), std::make_tuple(1, 2), std::make_tuple(2, 1),
                                           std::make_tuple(2, 2), std::make_tuple(3, 1), std::make_tuple(3, 2)),
                         [](const auto& info) {
                           return "Stage" + std::to_string(std::get<0>(info.param)) + "Accumulation" +
                                  std::to_string(std::get<1>(info.param));
                         });

using ActivationCheckpointing = deepspeed::testing::GlooRanksTest;

TEST_F(ActivationCheckpointing, EveryOtherBlockIsBitIdenticalToo) {
  const auto runs = run_pair({"--stage", "2", "--every", "2"}, "every2");
  ASSERT_EQ(runs.size(), 2u);
  for (int k = 0; k < 2; ++k) expect_identical(runs[k], "every 2nd block, rank " + std::to_string(k));
}

TEST_F(ActivationCheckpointing, Bf16IsWithinBf16Rounding) {
  for (const char* stage : {"0", "2"}) {
    const auto runs = run_pair({"--stage", stage, "--bf16"}, "bf16");
    ASSERT_EQ(runs.size(), 2u);
    const auto& r = runs[0];
    EXPECT_TRUE(torch::allclose(r.checkpointed.losses, r.reference.losses, 1e-2, 1e-3))
        << "stage " << stage << "\n" << r.checkpointed.losses << "\n" << r.reference.losses;
    // bf16 keeps 8 bits of mantissa: weights within a few units in the last place.
    EXPECT_TRUE(torch::allclose(r.checkpointed.weights, r.reference.weights, 2e-2, 2e-3))
        << "stage " << stage << ": up to "
        << (r.checkpointed.weights - r.reference.weights).abs().max().item<double>();
  }
}

TEST_F(ActivationCheckpointing, PartitionedActivationsGiveTheSameGradientsFromHalfTheBytes) {
  // Both ranks one model-parallel group of 2 (one data-parallel rank).
  const auto whole = run_pair({"--tensor_parallel", "2"}, "whole");
  const auto split = run_pair({"--tensor_parallel", "2", "--partition"}, "split");
  ASSERT_EQ(whole.size(), 2u);
  ASSERT_EQ(split.size(), 2u);
  for (int k = 0; k < 2; ++k) {
    expect_identical(split[k], "partition_activations, rank " + std::to_string(k));
    const int64_t full = host_bytes(whole[k].checkpointed), mine = host_bytes(split[k].checkpointed);
    EXPECT_GT(full, 0);
    EXPECT_EQ(mine * 2, full) << "rank " << k << " holds " << mine << " of " << full << " saved bytes";
  }
}

TEST_F(ActivationCheckpointing, ContiguousPartitionsGiveTheSameGradients) {
  const auto runs = run_pair({"--tensor_parallel", "2", "--partition", "--contiguous"}, "contiguous");
  ASSERT_EQ(runs.size(), 2u);
  for (int k = 0; k < 2; ++k) expect_identical(runs[k], "contiguous_memory_optimization, rank " + std::to_string(k));
}

TEST_F(ActivationCheckpointing, CpuCheckpointingKeepsInputsOnTheHostWithTheSameGradients) {
  const auto runs = run_pair({"--stage", "1", "--cpu"}, "cpu");
  ASSERT_EQ(runs.size(), 2u);
  for (int k = 0; k < 2; ++k) {
    expect_identical(runs[k], "cpu_checkpointing, rank " + std::to_string(k));
    EXPECT_GT(host_bytes(runs[k].checkpointed), 0);
    EXPECT_EQ(device_bytes(runs[k].checkpointed), 0);
  }
}

}  // namespace activation_checkpointing_integration
