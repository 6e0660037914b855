// A fixture for tests whose ranks talk over Gloo on the CPU because they are about processes
// (signals, timeouts, files, logs), not devices. A build whose LibTorch ships no Gloo (a
// PyTorch wheel's, on the GPU machines) cannot run them: they skip there, visibly. Use as
// `using SuiteName = deepspeed::testing::GlooRanksTest;` and TEST_F(SuiteName, ...).
#pragma once

#include <gtest/gtest.h>

#include "deepspeed/version.h"

namespace deepspeed::testing {

class GlooRanksTest : public ::testing::Test {
 protected:
  void SetUp() override {
#if !DEEPSPEED_HAVE_GLOO_BUILD
    GTEST_SKIP() << "this build has no Gloo backend (its LibTorch ships none); this test runs CPU ranks over Gloo";
#endif
  }
};

}  // namespace deepspeed::testing
