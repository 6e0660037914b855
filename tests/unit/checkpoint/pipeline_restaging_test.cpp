// restage_optimizer_state: the optimizer state of two saved stages, cut for one stage and for
// a stage holding a tied weight; both forms of the "optimizer" entry; clear errors for a
// parameter no stage saved and for another number of groups. restage_zero_state: ZeRO-1
// partitions of two stages on two data-parallel ranks put together for one stage.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/pipeline_restaging.h"

// A named namespace: this binary's test files are compiled together (unity build).
namespace pipeline_restaging_test {

using deepspeed::checkpoint::make_list;
using deepspeed::checkpoint::make_string_dict;
using deepspeed::checkpoint::PipeParameterLayout;
using deepspeed::checkpoint::SavedStageOptimizer;

// torch.optim's layout: one group, the given per-tensor exp_avg values.
c10::IValue optimizer_state(const std::vector<float>& exp_avgs) {
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  auto params = make_list();
  for (size_t i = 0; i < exp_avgs.size(); ++i) {
    auto entry = make_string_dict();
    entry.insert("exp_avg", torch::full({2}, exp_avgs[i]));
    state.insert(static_cast<int64_t>(i), entry);
    params.push_back(static_cast<int64_t>(i));
  }
  auto group = make_string_dict();
  group.insert("lr", 0.5);
  group.insert("params", params);
  auto groups = make_list();
  groups.push_back(group);
  auto out = make_string_dict();
  out.insert("state", state);
  out.insert("param_groups", groups);
  return out;
}

PipeParameterLayout layout(const std::vector<std::string>& names) {
  return {{names}, {std::vector<int64_t>(names.size(), 2)}};
}

float exp_avg_of(const c10::IValue& restaged, int64_t index) {
  return restaged.toGenericDict().at("state").toGenericDict().at(index).toGenericDict().at("exp_avg").toTensor()[0]
      .item<float>();
}

const std::vector<SavedStageOptimizer> kTwoStages = {
    {layout({"tied_modules.embed.weight", "1.weight"}), optimizer_state({1.0f, 2.0f}), "mp_rank_00_model_states.pt"},
    {layout({"tied_modules.embed.weight", "3.weight"}), optimizer_state({1.0f, 4.0f}), "mp_rank_01_model_states.pt"}};

TEST(PipelineRestaging, OneStageGathersEveryParametersStateInItsOwnOrder) {
  const auto out = deepspeed::checkpoint::restage_optimizer_state(
      kTwoStages, layout({"tied_modules.embed.weight", "1.weight", "3.weight"}));
  EXPECT_FLOAT_EQ(exp_avg_of(out, 0), 1.0f);
  EXPECT_FLOAT_EQ(exp_avg_of(out, 1), 2.0f);
  EXPECT_FLOAT_EQ(exp_avg_of(out, 2), 4.0f);
  const auto group = out.toGenericDict().at("param_groups").toListRef()[0].toGenericDict();
  EXPECT_EQ(group.at("lr").toDouble(), 0.5);
  EXPECT_EQ(deepspeed::checkpoint::int_list(group.at("params"), "params"), (std::vector<int64_t>{0, 1, 2}));
}

TEST(PipelineRestaging, Fp16FormCarriesTheMastersAndTheLossScaleKeys) {
  std::vector<SavedStageOptimizer> saved;
  for (size_t s = 0; s < kTwoStages.size(); ++s) {
    auto wrapped = make_string_dict();
    wrapped.insert("cur_scale", 1024.0);
    wrapped.insert("optimizer_state_dict", kTwoStages[s].optimizer);
    auto flat = make_list();
    flat.push_back(torch::arange(4, torch::kFloat32) + 10.0 * static_cast<double>(s));  // two parameters of 2
    wrapped.insert("fp32_groups_flat", flat);
    saved.push_back({kTwoStages[s].layout, wrapped, kTwoStages[s].file});
  }
  const auto out = deepspeed::checkpoint::restage_optimizer_state(saved, layout({"3.weight", "1.weight"})).toGenericDict();
  EXPECT_EQ(out.at("cur_scale").toDouble(), 1024.0);
  const auto masters = deepspeed::checkpoint::tensor_list(out.at("fp32_groups_flat"), "flat");
  ASSERT_EQ(masters.size(), 1u);
  // 3.weight is stage 1's second parameter (12, 13); 1.weight stage 0's second (2, 3).
  EXPECT_TRUE(torch::equal(masters[0], torch::tensor({12.0f, 13.0f, 2.0f, 3.0f})));
  EXPECT_FLOAT_EQ(exp_avg_of(out.at("optimizer_state_dict"), 0), 4.0f);
}

TEST(PipelineRestaging, MissingParameterAndGroupMismatchAreErrors) {
  try {
    deepspeed::checkpoint::restage_optimizer_state(kTwoStages, layout({"5.weight"}));
    FAIL() << "no error";
  } catch (const deepspeed::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no parameter '5.weight'"), std::string::npos) << e.what();
  }
  PipeParameterLayout two_groups{{{"1.weight"}, {"3.weight"}}, {{2}, {2}}};
  EXPECT_THROW(deepspeed::checkpoint::restage_optimizer_state(kTwoStages, two_groups), deepspeed::CheckpointError);
}

TEST(PipelineRestaging, LayoutRoundTripsThroughTheFileForm) {
  const PipeParameterLayout l{{{"a", "b"}, {"c"}}, {{3, 4}, {5}}};
  const auto back = deepspeed::checkpoint::pipe_parameter_layout(deepspeed::checkpoint::to_ivalue(l), "layout");
  EXPECT_EQ(back.names, l.names);
  EXPECT_EQ(back.numels, l.numels);
}

// One data-parallel rank's ZeRO-1 file of a stage whose group holds `values` (masters, and
// exp_avg = 10 x master), cut over `world` ranks as DeepSpeed cuts it (padded to 2 x world).
c10::impl::GenericDict zero_file(const std::vector<float>& values, int64_t world, int64_t rank) {
  const auto flat = torch::tensor(values);
  const int64_t padded = (flat.numel() + 2 * world - 1) / (2 * world) * (2 * world);
  const int64_t size = padded / world;
  const auto slice = torch::cat({flat, torch::zeros({padded - flat.numel()})}).narrow(0, rank * size, size);
  const int64_t real = std::max<int64_t>(0, std::min(size, flat.numel() - rank * size));
  auto entry = make_string_dict();
  entry.insert("exp_avg", slice * 10);
  entry.insert("step", torch::full({}, 3.0));
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  state.insert(int64_t{0}, entry);
  auto group = make_string_dict();
  group.insert("lr", 0.5);
  auto groups = make_list();
  groups.push_back(group);
  auto base = make_string_dict();
  base.insert("state", state);
  base.insert("param_groups", groups);
  auto masters = make_list();
  masters.push_back(slice.narrow(0, 0, real).clone());
  auto inner = make_string_dict();
  inner.insert("zero_stage", int64_t{1});
  inner.insert("partition_count", world);
  inner.insert("single_partition_of_fp32_groups", masters);
  inner.insert("base_optimizer_state", base);
  auto file = make_string_dict();
  file.insert("optimizer_state_dict", inner);
  return file;
}

c10::IValue shapes(const std::vector<std::pair<std::string, int64_t>>& params) {
  auto group = make_string_dict();
  for (const auto& [name, numel] : params) group.insert(name, c10::List<int64_t>({numel}));
  auto out = make_list();
  out.push_back(group);
  return out;
}

TEST(PipelineRestaging, ZeroPartitionsOfTwoStagesBecomeOneRanksStateForTheWantedParameters) {
  using deepspeed::checkpoint::SavedStageZeroState;
  // Stage 0: tied (3 elements) then 1.weight (2); stage 1: tied again, then 3.weight (2).
  const std::vector<float> stage0 = {1, 2, 3, 4, 5}, stage1 = {1, 2, 3, 7, 8};
  std::vector<SavedStageZeroState> saved(2);
  saved[0].param_shapes = shapes({{"tied_modules.embed.weight", 3}, {"1.weight", 2}});
  saved[1].param_shapes = shapes({{"tied_modules.embed.weight", 3}, {"3.weight", 2}});
  for (int64_t r = 0; r < 2; ++r) {
    saved[0].optim_states.push_back(zero_file(stage0, 2, r));
    saved[1].optim_states.push_back(zero_file(stage1, 2, r));
    saved[0].files.push_back("stage0 rank" + std::to_string(r));
    saved[1].files.push_back("stage1 rank" + std::to_string(r));
  }
  const auto out = deepspeed::checkpoint::restage_zero_state(saved, {"3.weight", "tied_modules.embed.weight"}, true);
  const auto inner = out.optim_states.at("optimizer_state_dict").toGenericDict();
  EXPECT_EQ(inner.at("partition_count").toInt(), 1);
  const auto masters = deepspeed::checkpoint::tensor_list(inner.at("single_partition_of_fp32_groups"), "masters");
  ASSERT_EQ(masters.size(), 1u);
  EXPECT_TRUE(torch::equal(masters[0], torch::tensor({7.0f, 8.0f, 1.0f, 2.0f, 3.0f}))) << masters[0];
  const auto entry = inner.at("base_optimizer_state").toGenericDict().at("state").toGenericDict().at(0).toGenericDict();
  // A rank of one keeps its padding: 5 elements padded to 6.
  EXPECT_TRUE(torch::equal(entry.at("exp_avg").toTensor(), torch::tensor({70.0f, 80.0f, 10.0f, 20.0f, 30.0f, 0.0f})))
      << entry.at("exp_avg").toTensor();
  EXPECT_EQ(entry.at("step").toTensor().item<double>(), 3.0);
  const auto group = out.param_shapes.toListRef()[0].toGenericDict();
  ASSERT_EQ(group.size(), 2u);
  EXPECT_EQ(group.begin()->key().toStringRef(), "3.weight");

  try {
    deepspeed::checkpoint::restage_zero_state(saved, {"5.weight"}, true);
    FAIL() << "expected a CheckpointError";
  } catch (const deepspeed::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("no parameter '5.weight'"), std::string::npos) << e.what();
  }
}

}  // namespace pipeline_restaging_test
