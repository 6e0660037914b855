// Tensor-parallel inference on 2 CPU ranks over Gloo gives the tokens and logits of one rank
// (inference_tp_worker.cpp checks them on each rank).
#include <gtest/gtest.h>

#include "multiprocess.h"

namespace deepspeed::inference_test {
namespace {

TEST(InferenceTensorParallelTest, TwoRanksGenerateTheTokensOfOne) {
  const auto ranks = testing::run_ranks(2, DS_BINARY_DIR "/bin/ds_test_inference_tp_worker", {},
                                        {.timeout = std::chrono::seconds(120), .env = {}});
  for (const auto& r : ranks) {
    EXPECT_FALSE(r.timed_out) << "rank " << r.rank << " hung:\n" << r.output;
    EXPECT_EQ(r.exit_code, 0) << "rank " << r.rank << ":\n" << r.output;
  }
}

}  // namespace
}  // namespace deepspeed::inference_test
