// What makes our files DeepSpeed's: the Python pickle writer and reader (pickle_io.h,
// python_value.h) and DeepSpeed's ZeRO partition cut (deepspeed_zero_layout.h).
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/deepspeed_zero_layout.h"
#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/pickle_io.h"
#include "checkpoint/python_value.h"
#include "checkpoint_test_helpers.h"

namespace ck = deepspeed::checkpoint;
using deepspeed::testing::error_of;

TEST(CheckpointPickle, PlainValuesRoundTrip) {
  auto d = ck::make_string_dict();
  d.insert("f32", torch::arange(6, torch::kFloat32).view({2, 3}));
  d.insert("bf16", torch::tensor({1.5, -2.0}).to(torch::kBFloat16));
  d.insert("i64", torch::arange(3, torch::kInt64));
  d.insert("view", torch::arange(10, torch::kFloat32).narrow(0, 2, 3));  // saved as its own storage
  d.insert("empty", torch::empty({0}));
  d.insert("scalar", torch::tensor(4.0));
  auto list = ck::make_list();
  for (const int64_t v : {int64_t{0}, int64_t{255}, int64_t{256}, int64_t{65536}, int64_t{-7}, int64_t{1} << 40,
                          -(int64_t{1} << 40)}) {
    list.push_back(v);
  }
  list.push_back(0.1);
  list.push_back(true);
  list.push_back(c10::IValue());
  list.push_back(std::string("text"));
  d.insert("list", list);
  d.insert("tuple", c10::ivalue::Tuple::create({int64_t{1}, std::string("b")}));
  c10::impl::GenericDict by_int(c10::IntType::get(), c10::AnyType::get());
  by_int.insert(int64_t{3}, std::string("three"));
  d.insert("by_int", by_int);

  const auto back = ck::from_pickle_bytes(ck::to_pickle_bytes(d), "x.pt").toGenericDict();
  for (const auto* key : {"f32", "bf16", "i64", "view", "empty", "scalar"}) {
    const auto a = d.at(key).toTensor(), b = back.at(key).toTensor();
    EXPECT_EQ(a.scalar_type(), b.scalar_type()) << key;
    EXPECT_TRUE(torch::equal(a, b)) << key;
  }
  const auto l = back.at("list").toListRef();
  ASSERT_EQ(l.size(), list.size());
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(l[i].toInt(), list.get(i).toInt()) << i;
  EXPECT_EQ(l[7].toDouble(), 0.1);
  EXPECT_TRUE(l[8].toBool());
  EXPECT_TRUE(l[9].isNone());
  EXPECT_EQ(l[10].toStringRef(), "text");
  EXPECT_EQ(back.at("tuple").toTupleRef().elements()[1].toStringRef(), "b");
  EXPECT_EQ(back.at("by_int").toGenericDict().at(int64_t{3}).toStringRef(), "three");
}

// torch.Size reads back as a tuple, an instance as its attributes, a global as its name.
TEST(CheckpointPickle, PythonValuesReadBackAsData) {
  auto d = ck::make_string_dict();
  d.insert("size", ck::torch_size({3, 4}));
  d.insert("scaler", ck::python_instance("deepspeed.runtime.fp16.loss_scaler", "DynamicLossScaler",
                                         {{"cur_scale", 65536.0}, {"dtype", ck::python_global("torch", "float16")}}));
  const auto back = ck::from_pickle_bytes(ck::to_pickle_bytes(d), "x.pt").toGenericDict();
  EXPECT_EQ(ck::int_list(back.at("size"), "size"), (std::vector<int64_t>{3, 4}));
  const auto scaler = back.at("scaler").toGenericDict();
  EXPECT_EQ(scaler.at("cur_scale").toDouble(), 65536.0);
  EXPECT_EQ(scaler.at("dtype").toStringRef(), "torch.float16");
  const auto p = ck::python_value(d.at("scaler"));
  EXPECT_EQ(p.kind, ck::PythonValue::Kind::kInstance);
  EXPECT_EQ(p.module, "deepspeed.runtime.fp16.loss_scaler");
  EXPECT_EQ(p.name, "DynamicLossScaler");
}

TEST(CheckpointPickle, DamageNamesTheFile) {
  std::vector<char> junk = {'n', 'o', 't', ' ', 'a', ' ', 'z', 'i', 'p'};
  EXPECT_NE(error_of([&] { ck::from_pickle_bytes(junk, "a.pt"); }).find("checkpoint file a.pt cannot be read"),
            std::string::npos);
  // An archive cut short still names the file.
  auto d = ck::make_string_dict();
  d.insert("t", torch::ones({4}));
  auto bytes = ck::to_pickle_bytes(d);
  bytes.resize(bytes.size() / 2);
  EXPECT_NE(error_of([&] { ck::from_pickle_bytes(bytes, "b.pt"); }).find("b.pt"), std::string::npos);
}

// stage_1_and_2.py: 10 elements on 3 ranks are padded to 12 (a multiple of 2 * 3); slices of
// 4; the last rank's ends in 2 zeros.
TEST(DeepSpeedZeroLayout, Stage12SlicesAndPadding) {
  EXPECT_EQ(ck::zero12_partition_size(10, 3), 4);
  EXPECT_EQ(ck::zero12_padding(10, 3, 0), 0);
  EXPECT_EQ(ck::zero12_padding(10, 3, 2), 2);
  EXPECT_EQ(ck::zero12_padding(2, 4, 1), 2);  // 2 elements padded to 8: ranks 1-3 hold only padding
  EXPECT_EQ(ck::zero12_padding(2, 4, 2), 2);
  const auto flat = torch::arange(10, torch::kFloat32);
  std::vector<torch::Tensor> lean;
  for (int64_t r = 0; r < 3; ++r) {
    const auto part = ck::zero12_partition(flat, 3, r);
    EXPECT_EQ(part.numel(), 4);
    lean.push_back(part.narrow(0, 0, 4 - ck::zero12_padding(10, 3, r)));
  }
  EXPECT_TRUE(torch::equal(ck::zero12_partition(flat, 3, 2), torch::tensor({8.f, 9.f, 0.f, 0.f})));
  EXPECT_TRUE(torch::equal(ck::zero12_flat(lean, 10, "x"), flat));
  EXPECT_NE(error_of([&] { ck::zero12_flat({lean[0]}, 10, "f.pt"); }).find("f.pt"), std::string::npos);
}

// stage3.py: every parameter on its own, ceil(numel / N) per rank, padded at its end.
TEST(DeepSpeedZeroLayout, Stage3CutsEachParameter) {
  const std::vector<torch::Tensor> params = {torch::arange(5, torch::kFloat32), torch::arange(10, 12, torch::kFloat32)};
  EXPECT_EQ(ck::zero3_partition_numel(5, 2), 3);
  const auto r0 = ck::zero3_partition(params, 2, 0), r1 = ck::zero3_partition(params, 2, 1);
  EXPECT_TRUE(torch::equal(r0, torch::tensor({0.f, 1.f, 2.f, 10.f})));
  EXPECT_TRUE(torch::equal(r1, torch::tensor({3.f, 4.f, 0.f, 11.f})));
  const auto back = ck::zero3_params({r0, r1}, {5, 2}, "x");
  EXPECT_TRUE(torch::equal(back[0], params[0]));
  EXPECT_TRUE(torch::equal(back[1], params[1]));
  EXPECT_NE(error_of([&] { ck::zero3_params({r0, r1.narrow(0, 0, 3)}, {5, 2}, "g.pt"); }).find("g.pt: rank 1"),
            std::string::npos);
}
