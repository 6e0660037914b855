// The parts of src/checkpoint/ one at a time: atomic files, client-state values,
// conversions, safetensors, optimizer/module state, data position. (Names, CRC32 and the
// manifest, which need no LibTorch, are in manifest_test.cpp.)
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <deepspeed/checkpoint.h>
#include <deepspeed/data_loader.h>
#include <deepspeed/errors.h>
#include <deepspeed/optimizer.h>

#include "checkpoint/atomic_file.h"
#include "runtime/data_position.h"
#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/layout.h"
#include "checkpoint/module_state.h"
#include "checkpoint/optimizer_state.h"
#include "checkpoint/pickle_io.h"
#include "checkpoint/safetensors.h"
#include "checkpoint_test_helpers.h"
#include "multiprocess.h"

namespace ck = deepspeed::checkpoint;
namespace fs = std::filesystem;
using deepspeed::StateDict;
using deepspeed::StateList;
using deepspeed::StateValue;
using deepspeed::testing::error_of;
using deepspeed::testing::read_file;
using deepspeed::testing::span_of;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

TEST(CheckpointAtomicFile, WritesReplacesAndSwapsFolders) {
  TempDir dir;
  const auto path = dir.file("f.bin");
  ck::write_file_atomically(path, span_of("first"));
  ck::write_file_atomically(path, span_of("second"));
  EXPECT_EQ(read_file(path), "second");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const auto bytes = ck::read_whole_file(path);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "second");
  EXPECT_NE(error_of([&] { ck::read_whole_file(dir.file("nope")); }).find(dir.file("nope") + " is missing"),
            std::string::npos);

  fs::create_directory(dir.file("tag"));
  write_file(dir.file("tag/old.pt"), "old");
  fs::create_directory(dir.file("tag.partial"));
  write_file(dir.file("tag.partial/new.pt"), "new");
  ck::replace_directory(dir.file("tag.partial"), dir.file("tag"));
  EXPECT_EQ(read_file(dir.file("tag/new.pt")), "new");
  EXPECT_FALSE(fs::exists(dir.file("tag/old.pt")));
  EXPECT_FALSE(fs::exists(dir.file("tag.partial")));
}

TEST(CheckpointClientState, ValuesReadAsWrittenAndRefuseOtherKinds) {
  deepspeed::ClientState sd;
  sd["step"] = 7;
  sd["loss"] = 0.25f;
  sd["name"] = "x";
  sd["flag"] = true;
  sd["nested"]["deeper"] = StateList{1, "two", torch::ones({2})};
  EXPECT_EQ(sd.at("step").to<int>(), 7);
  EXPECT_EQ(sd.at("step").to<double>(), 7.0);
  EXPECT_EQ(sd.at("loss").to<double>(), 0.25);
  EXPECT_EQ(sd.at("name").to<std::string>(), "x");
  EXPECT_TRUE(sd.at("flag").to<bool>());
  EXPECT_TRUE(sd.at("nested").contains("deeper"));
  EXPECT_EQ(sd.at("nested").at("deeper").as_list().at(1).as_string(), "two");
  EXPECT_NE(error_of([&] { (void)sd.at("name").as_int(); }).find("is a str, not a int"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)sd.at("nested").at("nope"); }).find("no key 'nope'"), std::string::npos);
  EXPECT_FALSE(StateValue(1) == StateValue(1.0));
  EXPECT_FALSE(StateValue(torch::ones({2})) == StateValue(torch::zeros({2})));
}

TEST(CheckpointClientState, RoundTripsThroughTorchPickle) {
  StateDict sd{{"step", 3},
               {"none", nullptr},
               {"f", 1.5},
               {"s", "text"},
               {"b", false},
               {"t", torch::arange(6).reshape({2, 3})},
               {"l", StateList{1, StateDict{{"k", "v"}}, StateList{}}},
               {"m", StateDict{}}};
  const auto bytes = ck::to_pickle_bytes(ck::to_ivalue(StateValue(sd)));
  const auto back = ck::to_state_value(ck::from_pickle_bytes(bytes, "f.pt"), "client state");
  EXPECT_TRUE(back == StateValue(sd));
  // A tuple (as Python writes betas) reads as a list; an int key as its text.
  c10::impl::GenericDict d(c10::IntType::get(), c10::AnyType::get());
  d.insert(int64_t{4}, c10::ivalue::Tuple::create({c10::IValue(1), c10::IValue(2.0)}));
  const auto v = ck::to_state_value(d, "x");
  EXPECT_TRUE(v.at("4") == StateValue(StateList{1, 2.0}));
  auto junk = bytes;
  junk.resize(junk.size() / 3);
  EXPECT_NE(error_of([&] { ck::from_pickle_bytes(junk, "dir/f.pt"); }).find("dir/f.pt cannot be read"),
            std::string::npos);
}

TEST(CheckpointConversion, JsonRoundTrip) {
  const auto j = nlohmann::json::parse(R"({"a": 1, "b": [1.5, "x", null, true], "c": {"d": {}}})");
  EXPECT_EQ(ck::to_json(ck::to_ivalue(j), "cfg"), j);
}

TEST(CheckpointSafetensors, HeaderAndDataAsTheFormatSays) {
  auto a = torch::arange(6, torch::kFloat32).reshape({2, 3});
  auto b = torch::tensor({1, 2}, torch::kInt64);
  const auto bytes = ck::safetensors_bytes({{"a", a}, {"b", b.t()}});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "data should start 8-byte aligned";
  const auto header = nlohmann::json::parse(std::string(bytes.data() + 8, n));
  EXPECT_EQ(header["a"]["dtype"], "F32");
  EXPECT_EQ(header["a"]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ(header["a"]["data_offsets"], nlohmann::json({0, 24}));
  EXPECT_EQ(header["b"]["dtype"], "I64");
  EXPECT_EQ(header["b"]["data_offsets"], nlohmann::json({24, 40}));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_EQ(bytes.size(), 8 + n + 40);
  float third = 0;
  std::memcpy(&third, bytes.data() + 8 + n + 8, 4);
  EXPECT_EQ(third, 2.0f);
  EXPECT_NE(error_of([] { ck::safetensors_dtype(torch::kComplexFloat); }).find("cannot hold"), std::string::npos);
}

TEST(CheckpointOptimizerState, RoundTripsHyperParametersAndState) {
  auto make = [](torch::Tensor& w) {
    deepspeed::ParamGroup g;
    g.params = {w};
    return deepspeed::make_optimizer("AdamW", {{"lr", 0.1}, {"betas", {0.8, 0.9}}}, {g});
  };
  auto w = torch::ones({3}, torch::requires_grad());
  auto opt = make(w);
  for (int i = 0; i < 2; ++i) {
    w.mutable_grad() = torch::full({3}, 0.5 * (i + 1));
    opt->step();
  }
  opt->param_groups()[0].lr = 0.05;
  const auto bytes = ck::to_pickle_bytes(ck::optimizer_state_dict(*opt));
  auto w2 = torch::ones({3}, torch::requires_grad());
  auto opt2 = make(w2);
  ck::load_optimizer_state(*opt2, ck::from_pickle_bytes(bytes, "f"), "f");
  EXPECT_EQ(opt2->param_groups()[0].lr, 0.05);
  EXPECT_EQ(opt2->param_groups()[0].betas[0], 0.8);
  ASSERT_EQ(opt2->state().size(), 1u);
  ASSERT_EQ(opt2->state()[0].size(), opt->state()[0].size());
  for (const auto& [k, t] : opt->state()[0]) EXPECT_TRUE(torch::equal(t, opt2->state()[0].at(k))) << k;

  auto v = torch::ones({4}, torch::requires_grad());
  auto opt3 = make(v);
  EXPECT_NE(error_of([&] { ck::load_optimizer_state(*opt3, ck::from_pickle_bytes(bytes, "f"), "f"); }).find("shape"),
            std::string::npos);
}

TEST(CheckpointModuleState, StrictAndShapeErrorsChangeNothing) {
  torch::nn::Linear a(3, 2), b(3, 2), c(4, 2);
  const auto sd = ck::module_state_dict(*a);
  ck::load_module_state(*b, sd, true, "f");
  EXPECT_TRUE(torch::equal(a->weight, b->weight));
  const auto before = c->weight.clone();
  const auto e = error_of([&] { ck::load_module_state(*c, sd, false, "dir/f.pt"); });
  EXPECT_NE(e.find("size mismatch for weight"), std::string::npos) << e;
  EXPECT_TRUE(torch::equal(before, c->weight)) << "nothing is copied when any entry is wrong";
  auto partial = ck::module_state_dict(*a);
  ASSERT_EQ(partial.erase("bias"), 1u);
  partial.insert("stray", torch::zeros({1}));
  const auto e2 = error_of([&] { ck::load_module_state(*b, partial, true, "dir/f.pt"); });
  EXPECT_NE(e2.find("Missing key(s) in state_dict: \"bias\""), std::string::npos) << e2;
  EXPECT_NE(e2.find("Unexpected key(s) in state_dict: \"stray\""), std::string::npos) << e2;
  EXPECT_EQ(error_of([&] { ck::load_module_state(*b, partial, false, "f"); }), "(no error)");
}

// The loader's position is kept in samples of the epoch's global order, so 2 ranks of 3
// samples per batch resume as 3 ranks of 2 at the same global sample.
TEST(CheckpointDataPosition, ResumesAtTheSameSamplesOnAnotherWorldSize) {
  auto reader = [](const std::vector<std::size_t>& idx) {
    auto t = torch::empty({static_cast<int64_t>(idx.size())}, torch::kLong);
    for (size_t i = 0; i < idx.size(); ++i) t[static_cast<int64_t>(i)] = static_cast<int64_t>(idx[i]);
    return deepspeed::Example{t, t};
  };
  auto loader = [&](int64_t rank, int64_t world, int64_t bs) {
    deepspeed::DataLoader::Options o;
    o.rank = rank;
    o.world_size = world;
    o.batch_size = bs;
    o.seed = 5;
    return deepspeed::DataLoader(reader, 36, o);
  };
  // Two ranks: finish epoch 0, then take batches 0..2 of epoch 1 (the loop's body is at 2).
  std::vector<deepspeed::DataLoader> two{loader(0, 2, 3), loader(1, 2, 3)};
  std::set<int64_t> next_batch_two;
  c10::IValue saved;
  for (auto& l : two) {
    for (auto it = l.begin(); it != l.end(); ++it) (void)*it;
    auto it = l.begin();
    for (int k = 0; k < 2; ++k) ++it;
    saved = deepspeed::loader_position(l);
    ++it;
    auto batch = (*it).data;
    for (int64_t k = 0; k < batch.numel(); ++k) next_batch_two.insert(batch[k].item<int64_t>());
  }
  EXPECT_EQ(saved.toGenericDict().at("consumed_samples").toInt(), 18);
  std::set<int64_t> next_batch_three;
  for (int64_t r = 0; r < 3; ++r) {
    auto l = loader(r, 3, 2);
    EXPECT_FALSE(deepspeed::restore_loader_position(l, saved, "f").has_value());
    auto it = l.begin();
    EXPECT_EQ(l.epoch(), 1);
    auto batch = (*it).data;
    for (int64_t k = 0; k < batch.numel(); ++k) next_batch_three.insert(batch[k].item<int64_t>());
  }
  EXPECT_EQ(next_batch_two, next_batch_three);

  // A finished epoch resumes at the start of the next one.
  auto done = loader(0, 1, 4);
  for (auto it = done.begin(); it != done.end(); ++it) (void)*it;
  auto fresh = loader(0, 1, 4);
  deepspeed::restore_loader_position(fresh, deepspeed::loader_position(done), "f");
  fresh.begin();
  EXPECT_EQ(fresh.epoch(), 1);
  EXPECT_EQ(fresh.batches_taken(), 0);
}
