// The quantizer op (deepspeed/quantizer.h) on the CPU: bytes and scales of hand-computed
// groups for int8 and int4 (DeepSpeed's formulas: scale = max|x| / 2^(bits-1), round half to
// even, clamp, int4 packed first value high), the round-trip bound (half a scale per value),
// the dequantize-reduce, DeepSpeed's weight groups, and the errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>
#include <deepspeed/quantizer.h>

namespace {

namespace q = deepspeed::ops::quantizer;

std::vector<int8_t> bytes(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::vector<int8_t>(c.data_ptr<int8_t>(), c.data_ptr<int8_t>() + c.numel());
}

TEST(QuantizerOp, Int8GroupsByHand) {
  if (!q::quantizer_op_built()) GTEST_SKIP() << "this build has no quantizer op (DS_BUILD_QUANTIZER=OFF)";
  // Group 0: max |x| = 2, q_scale = 256 / 4 = 64: 2 -> 128 clamps to 127, -2 -> -128,
  // 0.5 -> 32, 1/128 -> 0.5 rounds to even 0. Group 1: all zero: scale 1, bytes 0.
  // Group 2: max 0.25, q_scale 512: 0.25 -> 127 (clamped), -0.0029296875 -> -1.5 -> -2 (even),
  // 0.0048828125 -> 2.5 -> 2 (even), 0.125 -> 64.
  const auto x = torch::tensor({2.0f, -2.0f, 0.5f, 1.0f / 128, 0.0f, 0.0f, 0.0f, 0.0f, 0.25f, -0.0029296875f,
                                0.0048828125f, 0.125f});
  const auto r = q::quantize(x, 3, 8);
  EXPECT_EQ(bytes(r.data), (std::vector<int8_t>{127, -128, 32, 0, 0, 0, 0, 0, 127, -2, 2, 64}));
  ASSERT_EQ(r.scales.numel(), 3);
  EXPECT_EQ(r.scales[0].item<float>(), 1.0f / 64);
  EXPECT_EQ(r.scales[1].item<float>(), 1.0f);
  EXPECT_EQ(r.scales[2].item<float>(), 1.0f / 512);
  const auto y = q::dequantize(r);
  EXPECT_TRUE(torch::equal(y, torch::tensor({127.0f / 64, -2.0f, 0.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 127.0f / 512,
                                             -2.0f / 512, 2.0f / 512, 0.125f})));
}

TEST(QuantizerOp, Int4PacksTheFirstValueHigh) {
  if (!q::quantizer_op_built()) GTEST_SKIP() << "no quantizer op";
  // max 1.5, q_scale = 16 / 3: 1.5 -> 8 clamps to 7, -1.5 -> -8, 0.75 -> 4, -0.1875 -> -1,
  // 0.09375 -> 0.5 -> 0 (even), -0.28125 -> -1.5 -> -2 (even).
  const auto x = torch::tensor({1.5f, -1.5f, 0.75f, -0.1875f, 0.09375f, -0.28125f});
  const auto r = q::quantize(x, 1, 4);
  // (7, -8) -> 0x78, (4, -1) -> 0x4F, (0, -2) -> 0x0E.
  EXPECT_EQ(bytes(r.data), (std::vector<int8_t>{0x78, 0x4F, 0x0E}));
  EXPECT_EQ(r.scales[0].item<float>(), 1.0f / (16.0f / 3.0f));
  const auto y = q::dequantize(r);
  const float s = r.scales[0].item<float>();
  EXPECT_TRUE(torch::equal(y, torch::tensor({7 * s, -8 * s, 4 * s, -1 * s, 0.0f, -2 * s})));
}

TEST(QuantizerOp, RoundTripWithinHalfAScale) {
  if (!q::quantizer_op_built()) GTEST_SKIP() << "no quantizer op";
  torch::manual_seed(7);
  const auto x = torch::randn({64, 250});
  for (int bits : {8, 4}) {
    const auto r = q::quantize(x, 64, bits);
    EXPECT_EQ(r.data.numel(), x.numel() * bits / 8);
    const auto y = q::dequantize(r).view({64, 250});
    const auto max_abs = std::get<0>(x.abs().max(1, true));
    const auto scale = r.scales.view({64, 1});
    EXPECT_TRUE(torch::allclose(scale, max_abs / (1 << (bits - 1)), 1e-6, 0)) << bits;
    // Rounding: half a scale; values that round to 2^(bits-1), clamped: up to one scale.
    const auto err = (y - x).abs();
    const double top = ((1 << (bits - 1)) - 0.5) / (1 << (bits - 1));
    const auto clamped = x > max_abs * top * (1 - 1e-6);
    EXPECT_TRUE((err <= scale * (0.5 + 1e-4)).logical_or(clamped).all().item<bool>()) << bits;
    EXPECT_TRUE((err <= scale * (1 + 1e-4)).all().item<bool>()) << bits;
  }
}

TEST(QuantizerOp, DequantizeReduceSumsTheArrays) {
  if (!q::quantizer_op_built()) GTEST_SKIP() << "no quantizer op";
  torch::manual_seed(3);
  const auto a = torch::randn({40}), b = torch::randn({40}), c = torch::randn({40});
  const auto qa = q::quantize(a, 4, 4), qb = q::quantize(b, 4, 4), qc = q::quantize(c, 4, 4);
  const auto sum = q::dequantize_reduce(torch::cat({qa.data, qb.data, qc.data}),
                                        torch::cat({qa.scales, qb.scales, qc.scales}), 3, 40, 4, 4);
  EXPECT_TRUE(torch::equal(sum, q::dequantize(qa) + q::dequantize(qb) + q::dequantize(qc)));
}

TEST(QuantizerOp, WeightGroupsAsDeepSpeed) {
  // DeepSpeed's CUDAQuantizer: ceil(n / 8000) groups, raised until each holds a multiple of 8.
  EXPECT_EQ(q::weight_groups(8), 1);
  EXPECT_EQ(q::weight_groups(16000), 2);
  EXPECT_EQ(q::weight_groups(16008), 3);  // 3 x 5336 (8 | 5336)
  EXPECT_EQ(q::weight_groups(24), 1);
  // n not a multiple of 8 (DeepSpeed refuses): the fewest groups of at most 8000 dividing n.
  EXPECT_EQ(q::weight_groups(21), 1);
  EXPECT_EQ(q::weight_groups(16002), 3);
}

TEST(QuantizerOp, RefusesBadArguments) {
  if (!q::quantizer_op_built()) GTEST_SKIP() << "no quantizer op";
  const auto x = torch::randn({12});
  EXPECT_THROW(q::quantize(x, 5, 8), deepspeed::OpError);  // 5 does not divide 12
  EXPECT_THROW(q::quantize(x, 4, 4), deepspeed::OpError);  // groups of 3: odd for int4
  try {
    q::quantize(x, 1, 2);
    FAIL() << "2 bits accepted";
  } catch (const deepspeed::OpError& e) {
    EXPECT_NE(std::string(e.what()).find("bits must be 4 or 8"), std::string::npos) << e.what();
  }
}

}  // namespace
