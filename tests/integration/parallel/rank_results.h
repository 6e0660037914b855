// The parallel tests' runs: whether every rank of a run ended well, and the tensors each rank's
// worker saved to <prefix>.rank<R>.pt.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "multiprocess.h"

namespace deepspeed::testing {

// Adds a failure naming `what` and the rank for each rank that hung or exited non-zero; true
// when none did.
inline bool expect_ranks_succeeded(const std::vector<RankResult>& ranks, const std::string& what) {
  bool ok = true;
  for (const auto& r : ranks) {
    EXPECT_FALSE(r.timed_out) << what << " rank " << r.rank << " hung:\n" << r.output;
    EXPECT_EQ(r.exit_code, 0) << what << " rank " << r.rank << ":\n" << r.output;
    ok = ok && !r.timed_out && r.exit_code == 0;
  }
  return ok;
}

inline std::vector<std::vector<torch::Tensor>> load_rank_results(const std::string& prefix, int world) {
  std::vector<std::vector<torch::Tensor>> out;
  for (int k = 0; k < world; ++k) {
    std::vector<torch::Tensor> saved;
    torch::load(saved, prefix + ".rank" + std::to_string(k) + ".pt");
    out.push_back(std::move(saved));
  }
  return out;
}

}  // namespace deepspeed::testing
