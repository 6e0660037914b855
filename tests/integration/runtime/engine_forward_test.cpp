// Any model through the engine, on 2 ranks (engine_forward_worker.cpp): a tuple-returning
// model and a two-input model returning a struct give, through engine->forward at ZeRO
// stages 0-3, the loss that calling the module itself gives, and the same losses at every
// stage; no_sync() skips the reduction (each rank keeps its own gradient) until a backward
// outside it, and is refused where DeepSpeed refuses it.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>
#include <tuple>

#include "gpu_per_rank.h"
#include "multiprocess.h"

using deepspeed::testing::run_ranks;
using deepspeed::testing::RankResult;

// A named namespace: this binary's test files are compiled together (unity build).
namespace engine_forward_test {

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_engine_forward_worker";

std::vector<RankResult> run_two(const std::vector<std::string>& args) {
  auto ranks = run_ranks(2, kWorker, args);
  for (const auto& r : ranks) {
    EXPECT_FALSE(r.timed_out) << "rank " << r.rank << " hung:\n" << r.output;
    EXPECT_EQ(r.exit_code, 0) << "rank " << r.rank << ":\n" << r.output;
  }
  return ranks;
}

// The lines of one rank's output that start with `prefix `, split at blanks.
std::vector<std::vector<std::string>> lines(const RankResult& r, const std::string& prefix) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix + " ", 0) != 0) continue;
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(word);
    out.push_back(w);
  }
  return out;
}

bool close(double a, double b, double rtol) { return std::abs(a - b) <= rtol * std::max(1.0, std::abs(b)); }

TEST(EngineForward, TupleAndTwoInputModelsMatchTheModuleAtEveryZeroStage) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  const auto ranks = run_two({"--case", "forward"});
  if (::testing::Test::HasFailure()) return;
  for (const auto& r : ranks) {
    // (model, step) -> the loss at stage 0
    std::map<std::pair<std::string, int>, double> stage0;
    const auto rows = lines(r, "forward");
    ASSERT_EQ(rows.size(), 2u * 4u * 5u) << r.output;
    for (const auto& w : rows) {
      const std::string& model = w[1];
      const int stage = std::stoi(w[2]), step = std::stoi(w[3]);
      const double engine = std::stod(w[4]), direct = std::stod(w[5]);
      EXPECT_TRUE(close(engine, direct, 1e-6))
          << model << " stage " << stage << " step " << step << " rank " << r.rank << ": engine->forward gave "
          << engine << ", the module " << direct;
      if (stage == 0) {
        stage0[{model, step}] = engine;
      } else {
        EXPECT_TRUE(close(engine, stage0.at({model, step}), 1e-5))
            << model << " stage " << stage << " step " << step << " rank " << r.rank << ": " << engine
            << " vs stage 0's " << stage0.at({model, step});
      }
    }
  }
}

// Stages 0 and 1 (gradients whole on every rank): inside no_sync each rank's .grad is its own
// gradient; the next backward outside it reduces what accumulated; step() and a second
// no_sync inside it are refused with DeepSpeed's messages.
TEST(EngineForward, NoSyncSkipsTheReductionUntilABackwardOutsideIt) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  for (const char* stage : {"0", "1"}) {
    const auto ranks = run_two({"--case", "no_sync", "--stage", stage});
    if (::testing::Test::HasFailure()) return;
    std::vector<double> local_after, params;
    for (const auto& r : ranks) {
      const auto inside = lines(r, "grad inside");
      ASSERT_EQ(inside.size(), 1u) << r.output;
      EXPECT_TRUE(close(std::stod(inside[0][2]), std::stod(inside[0][3]), 1e-6))
          << "stage " << stage << " rank " << r.rank << ": inside no_sync .grad must be this rank's own gradient\n"
          << r.output;
      const auto refused = lines(r, "refused");
      ASSERT_EQ(refused.size(), 2u) << r.output;
      EXPECT_NE(r.output.find("refused It is illegal to call Engine.step() inside no_sync context manager"),
                std::string::npos)
          << r.output;
      EXPECT_NE(r.output.find("refused no_sync context manager reentry is unsupported"), std::string::npos)
          << r.output;
      const auto after = lines(r, "grad after");
      ASSERT_EQ(after.size(), 1u) << r.output;
      local_after.push_back(std::stod(after[0][3]));
      const auto p = lines(r, "params");
      ASSERT_EQ(p.size(), 1u) << r.output;
      EXPECT_EQ(p[0][1], "1") << "one optimizer step";
      params.push_back(std::stod(p[0][2]));
    }
    EXPECT_NE(local_after[0], local_after[1]) << "the ranks' data differ, so must their own gradients";
    EXPECT_EQ(params[0], params[1]) << "stage " << stage << ": the accumulated gradients were reduced before the step";
    if (std::string(stage) == "0") {
      // Stage 0 leaves the reduced (averaged) gradients in .grad.
      for (const auto& r : ranks) {
        const auto after = lines(r, "grad after");
        EXPECT_TRUE(close(std::stod(after[0][2]), (local_after[0] + local_after[1]) / 2, 1e-6))
            << "rank " << r.rank << ": .grad after the synchronised backward\n"
            << r.output;
      }
    }
  }
}

TEST(EngineForward, NoSyncIsRefusedWhereGradientsArePartitioned) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  for (const char* stage : {"2", "3"}) {
    const auto ranks = run_two({"--case", "no_sync", "--stage", stage});
    for (const auto& r : ranks) {
      EXPECT_NE(r.output.find(std::string("refused no_sync context manager is incompatible with gradient "
                                          "partitioning logic of ZeRO stage ") +
                              stage),
                std::string::npos)
          << r.output;
    }
  }
}

}  // namespace engine_forward_test
