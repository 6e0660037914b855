// The quantizer op's CUDA kernels (ops/cuda/quantizer) against its CPU kernels: the same
// int8 / int4 bytes and the same scales, bit for bit, for groups of many sizes (one block per
// group: sizes below, at and above the block's 256 threads), the same dequantized values, and
// the same fused dequantize-and-sum (ZeRO++'s qgZ reduction).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/quantizer.h>

namespace {

namespace q = deepspeed::ops::quantizer;

// Why the GPU kernels cannot run here, or null. (GTEST_SKIP in a helper would only leave the
// helper: the test body skips.)
const char* missing_gpu_kernels() {
  if (!torch::cuda::is_available()) return "no CUDA GPU on this machine";
  if (!q::quantizer_cuda_built()) return "this build has no CUDA quantizer kernels";
  return nullptr;
}

TEST(QuantizerGpu, BytesAndScalesEqualTheCpuKernels) {
  if (const char* why = missing_gpu_kernels()) GTEST_SKIP() << why;
  torch::manual_seed(11);
  for (int bits : {8, 4}) {
    for (int64_t group : {2, 30, 256, 1000, 8000, 20002}) {
      const int64_t groups = 7;
      auto x = torch::randn({groups * group}) * torch::rand({groups * group}).mul(10);
      x.narrow(0, 0, group).zero_();  // an all-zero group: scale 1
      const auto cpu = q::quantize(x, groups, bits);
      const auto gpu = q::quantize(x.cuda(), groups, bits);
      ASSERT_TRUE(gpu.data.is_cuda());
      EXPECT_TRUE(torch::equal(gpu.data.cpu(), cpu.data)) << bits << " bits, groups of " << group;
      EXPECT_TRUE(torch::equal(gpu.scales.cpu(), cpu.scales)) << bits << " bits, groups of " << group;
      EXPECT_TRUE(torch::equal(q::dequantize(gpu).cpu(), q::dequantize(cpu))) << bits << " bits, groups of " << group;
    }
  }
}

TEST(QuantizerGpu, DequantizeReduceEqualsTheCpuKernel) {
  if (const char* why = missing_gpu_kernels()) GTEST_SKIP() << why;
  torch::manual_seed(12);
  const int64_t tensors = 4, n = 6000, groups = 12;
  std::vector<torch::Tensor> data, scales;
  for (int64_t t = 0; t < tensors; ++t) {
    const auto part = q::quantize(torch::randn({n}), groups, 4);
    data.push_back(part.data);
    scales.push_back(part.scales);
  }
  const auto d = torch::cat(data), s = torch::cat(scales);
  const auto cpu = q::dequantize_reduce(d, s, tensors, n, groups, 4);
  const auto gpu = q::dequantize_reduce(d.cuda(), s.cuda(), tensors, n, groups, 4);
  EXPECT_TRUE(torch::equal(gpu.cpu(), cpu));
}

}  // namespace
