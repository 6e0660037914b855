// restage_optimizer_state: the optimizer state of two saved stages, cut for one stage and for
// a stage holding a tied weight; both forms of the "optimizer" entry; clear errors for a
// parameter no stage saved and for another number of groups.
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

}  // namespace pipeline_restaging_test
