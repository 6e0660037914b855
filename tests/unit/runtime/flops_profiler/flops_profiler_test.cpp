// The flops profiler's numbers against hand counts (Linear, Conv2d, attention built from
// matmul and softmax), its attribution of operators to modules, DeepSpeed's print layout and
// number format, and the engine running it at profile_step.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include <deepspeed/deepspeed.h>
#include <deepspeed/flops_profiler.h>

#include "multiprocess.h"
#include "runtime/flops_profiler/op_cost.h"
#include "runtime/flops_profiler/profile_report.h"

namespace deepspeed {
namespace {

const ModuleProfile& module(const FlopsProfiler& p, const std::string& path) {
  for (const auto& m : p.module_profiles()) {
    if (m.path == path) return m;
  }
  throw std::runtime_error("no module " + path);
}

template <typename Fn>
void profile(FlopsProfiler& p, Fn&& forward) {
  p.start_profile();
  auto y = forward();
  p.stop_profile();
  // Backward runs after the profile: its operators are not counted.
  y.sum().backward();
}

// LibTorch's Linear runs addmm for a 2-D input and matmul + add for more dimensions: both
// count two FLOPs per MAC and one per output element for the bias (DeepSpeed's Python
// profiler counts F.linear without the bias).
TEST(FlopsProfiler, LinearIsTwoFlopsPerMacPlusTheBias) {
  auto fc = torch::nn::Linear(8, 16);
  FlopsProfiler p(fc.ptr());
  profile(p, [&] { return fc->forward(torch::randn({4, 8})); });
  // 4 x 8 inputs, each multiplied into 16 outputs.
  EXPECT_EQ(p.get_total_macs(), 4 * 8 * 16);
  EXPECT_EQ(p.get_total_flops(), 2 * 4 * 8 * 16 + 4 * 16);
  EXPECT_EQ(p.get_total_params(), 8 * 16 + 16);
  EXPECT_GT(p.get_total_duration(), 0.0);
  profile(p, [&] { return fc->forward(torch::randn({2, 3, 8})); });
  EXPECT_EQ(p.get_total_macs(), 6 * 8 * 16);
  EXPECT_EQ(p.get_total_flops(), 2 * 6 * 8 * 16 + 6 * 16);
  // torch::linear itself, and without a bias.
  auto x = torch::randn({4, 8});
  p.start_profile();
  torch::linear(x, fc->weight, fc->bias);
  torch::linear(x, fc->weight);
  p.stop_profile();
  EXPECT_EQ(p.get_total_flops(), (2 * 4 * 8 * 16 + 4 * 16) + 2 * 4 * 8 * 16);
}

TEST(FlopsProfiler, Conv2dCountsKernelTimesChannelsPerOutputElementPlusBias) {
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 6, 5));
  FlopsProfiler p(conv.ptr());
  profile(p, [&] { return conv->forward(torch::randn({2, 3, 12, 12})); });
  const int64_t outputs = 2 * 6 * 8 * 8;
  const int64_t macs = outputs * 3 * 5 * 5;
  EXPECT_EQ(p.get_total_macs(), macs);
  EXPECT_EQ(p.get_total_flops(), 2 * macs + outputs);
  EXPECT_EQ(p.get_total_params(), 6 * 3 * 5 * 5 + 6);
}

TEST(FlopsProfiler, GroupedStridedConvAndNoBias) {
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 8, 3).stride(2).padding(1).groups(2).bias(false));
  FlopsProfiler p(conv.ptr());
  profile(p, [&] { return conv->forward(torch::randn({1, 4, 10, 10})); });
  const int64_t outputs = 1 * 8 * 5 * 5;
  EXPECT_EQ(p.get_total_macs(), outputs * (4 / 2) * 3 * 3);
  EXPECT_EQ(p.get_total_flops(), 2 * outputs * (4 / 2) * 3 * 3);
}

constexpr int64_t kB = 2, kT = 5, kE = 8;

// Single-head attention from its parts: projections, q k^T / sqrt(E), softmax, weights v.
struct AttentionImpl : torch::nn::Module {
  AttentionImpl() {
    q = register_module("q", torch::nn::Linear(kE, kE));
    k = register_module("k", torch::nn::Linear(kE, kE));
    v = register_module("v", torch::nn::Linear(kE, kE));
    o = register_module("o", torch::nn::Linear(kE, kE));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto scores = torch::matmul(q->forward(x), k->forward(x).transpose(-2, -1)) / std::sqrt(double(kE));
    return o->forward(torch::matmul(torch::softmax(scores, -1), v->forward(x)));
  }
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
};
TORCH_MODULE(Attention);

struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    attn = register_module("attn", Attention());
    fc = register_module("fc", torch::nn::Linear(kE, 4));
  }
  torch::Tensor forward(torch::Tensor x) { return fc->forward(torch::relu(attn->forward(x))); }
  Attention attn{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Block);

constexpr int64_t kProjectionMacs = kB * kT * kE * kE;                 // each of q, k, v, o
constexpr int64_t kProjectionFlops = 2 * kProjectionMacs + kB * kT * kE;  // and its bias
constexpr int64_t kScoresMacs = kB * kT * kT * kE;                     // q k^T
constexpr int64_t kContextMacs = kB * kT * kT * kE;                    // softmax(...) v
constexpr int64_t kAttentionFlops = 4 * kProjectionFlops + 2 * kScoresMacs + kB * kT * kT /* div */ +
                                    kB * kT * kT /* softmax */ + 2 * kContextMacs;

TEST(FlopsProfiler, AttentionFromMatmulAndSoftmax) {
  Attention attn;
  FlopsProfiler p(attn.ptr());
  profile(p, [&] { return attn->forward(torch::randn({kB, kT, kE})); });
  EXPECT_EQ(p.get_total_macs(), 4 * kProjectionMacs + kScoresMacs + kContextMacs);
  EXPECT_EQ(p.get_total_flops(), kAttentionFlops);
  for (const char* proj : {"q", "k", "v", "o"}) {
    EXPECT_EQ(module(p, proj).flops, kProjectionFlops) << proj;
    EXPECT_EQ(module(p, proj).macs, kProjectionMacs) << proj;
    EXPECT_EQ(module(p, proj).type, "Linear");
  }
  EXPECT_EQ(module(p, "").type, "Attention");
}

// Operators without parameters go to the deepest module sure to enclose them: the attention
// arithmetic (between attn.v and attn.o) to attn, the relu (between attn.o and fc) to block.
TEST(FlopsProfiler, ParameterFreeOperatorsGoToTheEnclosingModule) {
  Block block;
  FlopsProfiler p(block.ptr());
  profile(p, [&] { return block->forward(torch::randn({kB, kT, kE})); });
  const int64_t fc_flops = 2 * kB * kT * kE * 4 + kB * kT * 4;
  EXPECT_EQ(module(p, "attn").flops, kAttentionFlops);
  EXPECT_EQ(module(p, "attn.q").flops, kProjectionFlops);
  EXPECT_EQ(module(p, "fc").flops, fc_flops);
  EXPECT_EQ(module(p, "").flops, kAttentionFlops + kB * kT * kE /* relu */ + fc_flops);
  EXPECT_EQ(module(p, "attn.q").depth, 2);
  EXPECT_EQ(module(p, "attn").params, 4 * (kE * kE + kE));
  // Latency adds up the same way: a parent takes at least its children's time.
  EXPECT_GE(module(p, "").seconds, module(p, "attn").seconds + module(p, "fc").seconds);
  EXPECT_GE(module(p, "attn").seconds, module(p, "attn.q").seconds);
}

TEST(FlopsProfiler, EachStartForgetsThePreviousProfileAndEndClearsIt) {
  auto fc = torch::nn::Linear(8, 16);
  FlopsProfiler p(fc.ptr());
  profile(p, [&] { return fc->forward(torch::randn({4, 8})); });
  profile(p, [&] { return fc->forward(torch::randn({1, 8})); });
  EXPECT_EQ(p.get_total_macs(), 8 * 16);
  p.end_profile();
  EXPECT_EQ(p.get_total_flops(), 0);
  EXPECT_FALSE(p.started());
}

#if DS_TORCH_AT_LEAST(2, 0)
TEST(FlopsProfiler, ScaledDotProductAttention) {
  auto q = torch::randn({kB, kT, kE}), k = torch::randn({kB, kT, kE}), v = torch::randn({kB, kT, kE});
  auto holder = std::make_shared<torch::nn::Module>();
  FlopsProfiler p(holder);
  p.start_profile();
  torch::scaled_dot_product_attention(q, k, v);
  p.stop_profile();
  EXPECT_EQ(p.get_total_macs(), kScoresMacs + kContextMacs);
}
#endif

TEST(OpCost, FormulasFromShapes) {
  using flops::InputInfo;
  auto tensor = [](std::vector<int64_t> sizes) {
    InputInfo i;
    i.kind = InputInfo::Kind::Tensor;
    i.sizes = std::move(sizes);
    return i;
  };
  InputInfo none;
  none.kind = InputInfo::Kind::None;
  InputInfo yes;
  yes.kind = InputInfo::Kind::Bool;
  yes.flag = true;
  // addmm(bias[16], x[4,8], w^T[8,16]): 2 x 512, and the bias added to each of the 64 outputs.
  auto c = flops::op_cost("aten::addmm", {tensor({16}), tensor({4, 8}), tensor({8, 16})}, {4, 16});
  EXPECT_EQ(c.macs, 512);
  EXPECT_EQ(c.flops, 1024 + 64);
  // A broadcast matmul [3,4] x [2,4,5] -> [2,3,5]: 30 outputs x 4.
  EXPECT_EQ(flops::op_cost("aten::matmul", {tensor({3, 4}), tensor({2, 4, 5})}, {2, 3, 5}).macs, 120);
  // Transposed convolution through aten::convolution (transposed flag at input 6).
  std::vector<InputInfo> conv_t = {tensor({1, 4, 5, 5}), tensor({4, 3, 2, 2}), none, none, none, none, yes};
  EXPECT_EQ(flops::op_cost("aten::convolution", conv_t, {1, 3, 6, 6}).macs, 4 * 5 * 5 * 3 * 2 * 2);
  // batch_norm in training with affine weights: 5 per element.
  std::vector<InputInfo> bn = {tensor({2, 3, 4}), tensor({3}), tensor({3}), tensor({3}), tensor({3}), yes};
  EXPECT_EQ(flops::op_cost("aten::batch_norm", bn, {2, 3, 4}).flops, 5 * 24);
  EXPECT_EQ(flops::op_cost("aten::layer_norm", {tensor({2, 8}), InputInfo{}, none}, {2, 8}).flops, 4 * 16);
  EXPECT_EQ(flops::op_cost("aten::relu_", {tensor({7})}, {7}).flops, 7);
  EXPECT_EQ(flops::op_cost("aten::max_pool2d", {tensor({1, 1, 4, 4})}, {1, 1, 2, 2}).flops, 16);
  EXPECT_TRUE(flops::has_formula("aten::dropout"));
  EXPECT_EQ(flops::op_cost("aten::dropout", {tensor({9})}, {9}).flops, 0);
  EXPECT_FALSE(flops::has_formula("aten::view"));
  EXPECT_FALSE(flops::has_formula("aten::einsum"));  // counted through the bmm it runs
}

TEST(ProfileReport, DeepSpeedsNumberFormat) {
  EXPECT_EQ(flops::number_to_string(44426), "44.43 K");
  EXPECT_EQ(flops::number_to_string(0), "0 ");
  EXPECT_EQ(flops::number_to_string(999), "999 ");
  EXPECT_EQ(flops::number_to_string(2.5e12), "2.5 T");
  EXPECT_EQ(flops::number_to_string(1e-4), "100 u");
  EXPECT_EQ(flops::params_to_string(156), "156");
  EXPECT_EQ(flops::params_to_string(1.5e9), "1.5 B");
  EXPECT_EQ(flops::macs_to_string(57600), "57.6 KMACs");
  EXPECT_EQ(flops::duration_to_string(0.0012), "1.2 ms");
  EXPECT_EQ(flops::flops_to_string(1.5e9), "1.5 GFLOPS");
}

TEST(ProfileReport, PrintsDeepSpeedsLayout) {
  Block block;
  FlopsProfiler p(block.ptr());
  profile(p, [&] { return block->forward(torch::randn({kB, kT, kE})); });
  std::ostringstream out;
  ProfileContext context;
  context.world_size = context.dp_world_size = 2;
  context.micro_batch_size = 4;
  context.forward_ms = 2.0;
  context.backward_ms = 4.0;
  context.step_ms = 2.0;
  p.print_model_profile(out, {.profile_step = 3, .module_depth = -1, .top_modules = 2, .detailed = true}, context);
  const std::string text = out.str();
  auto has_line = [&](const std::string& line) { return ("\n" + text).find("\n" + line + "\n") != std::string::npos; };
  EXPECT_TRUE(has_line("-------------------------- DeepSpeed Flops Profiler --------------------------")) << text;
  EXPECT_TRUE(has_line("Profile Summary at step 3:")) << text;
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "world size: ", "2"))) << text;
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "batch size per GPU: ", "4"))) << text;
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "params per GPU: ", flops::params_to_string(4 * 72 + 36)))) << text;
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "fwd flops per GPU: ", flops::number_to_string(p.get_total_flops()))))
      << text;
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "fwd latency: ", "2 ms"))) << text;
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "bwd latency: ", "4 ms"))) << text;
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "iter latency: ", "8 ms"))) << text;
  // 4 samples x 2 ranks in 8 ms.
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "samples/second: ", "1000.0"))) << text;
  EXPECT_TRUE(has_line(fmt::format("{:<70}  {:<8}", "bwd FLOPS per GPU = 2 * fwd flops per GPU / bwd latency: ",
                                   flops::flops_to_string(2.0 * p.get_total_flops() / 0.004))))
      << text;
  EXPECT_TRUE(has_line("Top 2 modules in terms of params, MACs or fwd latency at different model depths:")) << text;
  EXPECT_TRUE(has_line("depth 0:")) << text;
  EXPECT_TRUE(has_line("depth 2:")) << text;  // -1: down to the innermost modules
  EXPECT_TRUE(has_line("    params      - {'Block': '" + flops::params_to_string(4 * 72 + 36) + "'}")) << text;
  // Depth 1: attn (288 params) before fc (36).
  EXPECT_TRUE(has_line("    params      - {'Attention': '288', 'Linear': '36'}")) << text;
  EXPECT_TRUE(has_line("------------------------------ Detailed Profile per GPU ------------------------------")) << text;
  // The tree: the root's profile on its own line, children indented, Linear's own repr kept.
  EXPECT_TRUE(has_line("Block(")) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  324 = 100% Params, [0-9.]+ KMACs = 100% MACs, [0-9.]+ [mu]?s = 100% latency, [0-9.]+ [KMG]?FLOPS\n)")))
      << text;
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  \(attn\): Attention\(\n    288 = 88\.89% Params, )"))) << text;
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(\n    \(q\): Linear\(72 = 22\.22% Params, 640 MACs = [0-9.]+% MACs, .*, in_features=8, out_features=8, bias=true\)\n)")))
      << text;
  EXPECT_TRUE(std::regex_search(text, std::regex(R"(\n  \)\n  \(fc\): Linear\(36 = 11\.11% Params, )"))) << text;
  EXPECT_TRUE(text.ends_with(")\n------------------------------------------------------------------------------\n")) << text;
}

TEST(ProfileReport, ModuleDepthLimitsTheAggregatedProfileAndDetailedCanBeOff) {
  Block block;
  FlopsProfiler p(block.ptr());
  profile(p, [&] { return block->forward(torch::randn({kB, kT, kE})); });
  std::ostringstream out;
  p.print_model_profile(out, {.profile_step = 1, .module_depth = 1, .top_modules = 1, .detailed = false});
  const std::string text = out.str();
  EXPECT_NE(text.find("depth 0:"), std::string::npos) << text;
  EXPECT_EQ(text.find("depth 1:"), std::string::npos) << text;
  EXPECT_EQ(text.find("Detailed Profile"), std::string::npos) << text;
  EXPECT_EQ(text.find("\nbwd latency: "), std::string::npos) << "no engine timings: no backward lines\n" << text;
}

struct ProfiledMlp : torch::nn::Module {
  ProfiledMlp() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 4));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::tanh(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

// The engine profiles the forward of step profile_step and prints at that step's end, once;
// the flops profiler turns wall_clock_breakdown on, whose lines come every steps_per_print.
TEST(EngineFlopsProfiler, ProfilesStepProfileStepIntoOutputFile) {
  testing::TempDir dir;
  auto config = nlohmann::json::parse(R"({"train_batch_size": 4, "steps_per_print": 2,
      "optimizer": {"type": "SGD", "params": {"lr": 0.1}},
      "flops_profiler": {"enabled": true, "profile_step": 2, "top_modules": 3}})");
  config["flops_profiler"]["output_file"] = dir.file("sub/profile.txt");
  auto net = std::make_shared<ProfiledMlp>();
  InitializeOptions options;
  options.config_json = config;
  auto [engine, optimizer, loader, scheduler] = initialize(net, options);
  EXPECT_TRUE(engine->config().wall_clock_breakdown);
  ::testing::internal::CaptureStdout();
  for (int step = 0; step < 4; ++step) {
    auto loss = engine->forward(torch::randn({4, 8}, engine->device())).pow(2).mean();
    engine->backward(loss);
    engine->step();
    if (step == 1) {
      EXPECT_FALSE(std::filesystem::exists(dir.file("sub/profile.txt"))) << "printed too early";
    }
  }
  const std::string out = ::testing::internal::GetCapturedStdout();
  const std::string text = testing::read_file(dir.file("sub/profile.txt"));
  EXPECT_NE(text.find("Profile Summary at step 2:"), std::string::npos) << text;
  const int64_t macs = 4 * 8 * 16 + 4 * 16 * 4;
  EXPECT_NE(text.find(fmt::format("{:<70}  {:<8}", "fwd MACs per GPU: ", flops::macs_to_string(macs))), std::string::npos)
      << text;
  EXPECT_NE(text.find(fmt::format("{:<70}  {:<8}", "fwd flops per GPU: ",
                                  flops::number_to_string(2 * macs + 4 * 16 + 4 * 4 + 4 * 16))),
            std::string::npos)
      << "2 x MACs, the biases and tanh's one per element\n" << text;
  EXPECT_NE(text.find("bwd latency: "), std::string::npos) << text;
  EXPECT_NE(text.find("    params      - {'Linear': '212'}"), std::string::npos) << "fc1 and fc2 together\n" << text;
  EXPECT_EQ(out.find("DeepSpeed Flops Profiler"), std::string::npos) << "went to the file, not stdout";
  // Wall-clock lines at steps 2 and 4, each pair once.
  std::regex micro(R"(\[Rank 0\] time \(ms\) \| fwd_microstep: \d+\.\d\d \| bwd_microstep: \d+\.\d\d \| bwd_inner_microstep: \d+\.\d\d \| bwd_allreduce_microstep: \d+\.\d\d \| step_microstep: \d+\.\d\d\n)");
  std::regex global(R"(\[Rank 0\] time \(ms\) \| fwd: \d+\.\d\d \| bwd: \d+\.\d\d \| bwd_inner: \d+\.\d\d \| bwd_allreduce: \d+\.\d\d \| step: \d+\.\d\d\n)");
  EXPECT_EQ(std::distance(std::sregex_iterator(out.begin(), out.end(), micro), std::sregex_iterator()), 2) << out;
  EXPECT_EQ(std::distance(std::sregex_iterator(out.begin(), out.end(), global), std::sregex_iterator()), 2) << out;
}

}  // namespace
}  // namespace deepspeed
