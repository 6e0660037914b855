// The transformer op's ATen path (the CPU's) against the block written with torch::nn:
// forward and backward for several shapes, masks and both layer-norm placements, dropout
// with the same masks, determinism for a seed, the memory options, and bad input.
#include <gtest/gtest.h>

#include <deepspeed/errors.h>
#include <deepspeed/transformer.h>

#include "transformer_reference.h"

namespace {

using deepspeed::ops::TransformerConfig;
using deepspeed::ops::TransformerLayer;

using ds_test::config_for;
using ds_test::Shape;

enum class MaskKind { None, Padding, Causal };

torch::Tensor make_mask(MaskKind kind, int64_t batch, int64_t seq) {
  if (kind == MaskKind::None) return {};
  if (kind == MaskKind::Causal) {
    return torch::triu(torch::full({seq, seq}, -10000.0f), 1).view({1, 1, seq, seq});
  }
  // BERT's extended mask: the last k positions of sequence b are padding (k = b % seq).
  auto m = torch::zeros({batch, 1, 1, seq});
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t pad = b % seq;
    if (pad > 0) m[b].narrow(-1, seq - pad, pad).fill_(-10000.0f);
  }
  return m;
}

struct Result {
  torch::Tensor out, dx;
  std::vector<torch::Tensor> grads;
};

Result run_layer(TransformerLayer& layer, const torch::Tensor& x, const torch::Tensor& mask,
                 const torch::Tensor& dy) {
  auto xi = x.detach().clone().requires_grad_(true);
  for (auto& p : layer->parameters()) p.mutable_grad() = torch::Tensor();
  auto out = layer(xi, mask);
  out.backward(dy);
  Result r{out.detach(), xi.grad(), {}};
  for (auto& p : ds_test::layer_params(layer)) r.grads.push_back(p.grad());
  return r;
}

Result run_reference(ds_test::ReferenceLayer& ref, const torch::Tensor& x, const torch::Tensor& mask,
                     const torch::Tensor& dy, const std::array<torch::Tensor, 3>& factors) {
  auto xi = x.detach().clone().requires_grad_(true);
  for (auto& p : ref->parameters()) p.mutable_grad() = torch::Tensor();
  auto out = ref(xi, mask, factors);
  out.backward(dy);
  Result r{out.detach(), xi.grad(), {}};
  for (auto& p : ds_test::reference_params(ref)) r.grads.push_back(p.grad());
  return r;
}

void expect_close(const Result& got, const Result& want, double bound, const std::string& what) {
  EXPECT_LT(ds_test::relative_error(got.out, want.out), bound) << what << ": output";
  EXPECT_LT(ds_test::relative_error(got.dx, want.dx), bound) << what << ": input gradient";
  for (size_t i = 0; i < want.grads.size(); ++i) {
    ASSERT_TRUE(got.grads[i].defined()) << what << ": no gradient for " << ds_test::kParamNames[i];
    EXPECT_LT(ds_test::relative_error(got.grads[i], want.grads[i]), bound)
        << what << ": gradient of " << ds_test::kParamNames[i];
  }
}

void expect_identical(const Result& a, const Result& b, const std::string& what) {
  EXPECT_TRUE(torch::equal(a.out, b.out)) << what << ": output";
  EXPECT_TRUE(torch::equal(a.dx, b.dx)) << what << ": input gradient";
  for (size_t i = 0; i < a.grads.size(); ++i) {
    EXPECT_TRUE(torch::equal(a.grads[i], b.grads[i])) << what << ": gradient of " << ds_test::kParamNames[i];
  }
}

const Shape kShapes[] = {{2, 8, 16, 2, 64}, {3, 12, 32, 4, 48}, {1, 20, 24, 3, 96}};

TEST(TransformerOp, MatchesTheTorchNnLayerForShapesMasksAndBothNormPlacements) {
  torch::manual_seed(0);
  for (const auto& s : kShapes) {
    for (bool pre_ln : {true, false}) {
      for (MaskKind kind : {MaskKind::None, MaskKind::Padding, MaskKind::Causal}) {
        const auto c = config_for(s, pre_ln);
        TransformerLayer layer(c);
        ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, pre_ln, c.layer_norm_eps);
        ds_test::load_reference(layer, ref);
        const auto x = torch::randn({s.batch, s.seq, s.hidden});
        const auto dy = torch::randn({s.batch, s.seq, s.hidden});
        const auto mask = make_mask(kind, s.batch, s.seq);
        const std::string what = "batch " + std::to_string(s.batch) + " seq " + std::to_string(s.seq) + " hidden " +
                                 std::to_string(s.hidden) + (pre_ln ? " pre-LN" : " post-LN") + " mask " +
                                 std::to_string(static_cast<int>(kind));
        expect_close(run_layer(layer, x, mask, dy), run_reference(ref, x, mask, dy, {}), 2e-5, what);
      }
    }
  }
}

TEST(TransformerOp, DropoutDropsTheSameElementsAsItsSeedSays) {
  torch::manual_seed(1);
  const Shape s{2, 8, 16, 2, 32};
  for (bool pre_ln : {true, false}) {
    const auto c = config_for(s, pre_ln, 0.25f);
    TransformerLayer layer(c);
    ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, pre_ln, c.layer_norm_eps);
    ds_test::load_reference(layer, ref);
    const auto mask = make_mask(MaskKind::Padding, s.batch, s.seq);
    // Two calls: the second uses the next offsets, and the reference the masks they give.
    for (uint64_t call = 0; call < 2; ++call) {
      const auto x = torch::randn({s.batch, s.seq, s.hidden}), dy = torch::randn({s.batch, s.seq, s.hidden});
      const auto factors = ds_test::layer_dropout(c, s.batch, s.seq, call, torch::kCPU);
      expect_close(run_layer(layer, x, mask, dy), run_reference(ref, x, mask, dy, factors), 2e-5,
                   std::string(pre_ln ? "pre-LN" : "post-LN") + " call " + std::to_string(call));
    }
    // About a quarter of each mask is dropped.
    const auto factors = ds_test::layer_dropout(c, s.batch, s.seq, 0, torch::kCPU);
    for (const auto& f : factors) {
      const double dropped = (f == 0).to(torch::kDouble).mean().item<double>();
      EXPECT_NEAR(dropped, 0.25, 0.08);
    }
  }
}

TEST(TransformerOp, SameSeedSameResultsOtherSeedOtherResults) {
  torch::manual_seed(2);
  const Shape s{2, 8, 16, 2, 32};
  auto c = config_for(s, true, 0.2f);
  TransformerLayer a(c), b(c);
  ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, true, c.layer_norm_eps);
  ds_test::load_reference(a, ref);
  ds_test::load_reference(b, ref);
  c.seed = 99;
  TransformerLayer other(c);
  ds_test::load_reference(other, ref);
  const auto x = torch::randn({s.batch, s.seq, s.hidden}), dy = torch::randn({s.batch, s.seq, s.hidden});
  const auto ra = run_layer(a, x, {}, dy);
  expect_identical(ra, run_layer(b, x, {}, dy), "same seed");
  EXPECT_FALSE(torch::equal(ra.out, run_layer(other, x, {}, dy).out)) << "another seed drops other elements";
  EXPECT_FALSE(torch::equal(ra.out, run_layer(a, x, {}, dy).out)) << "the next call draws new masks";
}

TEST(TransformerOp, EvalModeHasNoDropoutAndNoGradModeSavesNothing) {
  torch::manual_seed(3);
  const Shape s{2, 8, 16, 2, 32};
  auto c = config_for(s, false, 0.3f);
  TransformerLayer layer(c);
  ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, false, c.layer_norm_eps);
  ds_test::load_reference(layer, ref);
  layer->eval();
  const auto x = torch::randn({s.batch, s.seq, s.hidden}), dy = torch::randn({s.batch, s.seq, s.hidden});
  expect_close(run_layer(layer, x, {}, dy), run_reference(ref, x, {}, dy, {}), 2e-5, "eval");
  EXPECT_GT(layer->saved_activation_bytes(), 0);
  torch::NoGradGuard no_grad;
  layer(x);
  EXPECT_EQ(layer->saved_activation_bytes(), 0);
}

TEST(TransformerOp, EachMemoryOptionSavesLessAndKeepsTheGradients) {
  torch::manual_seed(4);
  const Shape s{2, 16, 32, 4, 128};
  for (bool pre_ln : {true, false}) {
    const auto base = config_for(s, pre_ln, 0.1f);
    TransformerLayer plain(base);
    ds_test::ReferenceLayer ref(s.hidden, s.heads, s.intermediate, pre_ln, base.layer_norm_eps);
    ds_test::load_reference(plain, ref);
    const auto x = torch::randn({s.batch, s.seq, s.hidden}), dy = torch::randn({s.batch, s.seq, s.hidden});
    const auto mask = make_mask(MaskKind::Padding, s.batch, s.seq);
    const auto want = run_layer(plain, x, mask, dy);
    const int64_t plain_bytes = plain->saved_activation_bytes();
    struct Option {
      const char* name;
      bool TransformerConfig::*field;
      int64_t at_least;  // bytes it must save: the tensor it no longer keeps
    };
    const int64_t act = s.batch * s.seq * s.hidden * 4;
    const Option options[] = {
        {"normalize_invertible", &TransformerConfig::normalize_invertible, act},
        {"gelu_checkpoint", &TransformerConfig::gelu_checkpoint, s.batch * s.seq * s.intermediate * 4},
        {"attn_dropout_checkpoint", &TransformerConfig::attn_dropout_checkpoint,
         s.batch * s.heads * s.seq * s.seq * 4},
    };
    for (const auto& o : options) {
      auto c = base;
      c.*(o.field) = true;
      TransformerLayer layer(c);
      ds_test::load_reference(layer, ref);
      const auto got = run_layer(layer, x, mask, dy);
      const std::string what = std::string(o.name) + (pre_ln ? " pre-LN" : " post-LN");
      EXPECT_LE(layer->saved_activation_bytes(), plain_bytes - o.at_least)
          << what << ": " << layer->saved_activation_bytes() << " bytes saved, " << plain_bytes << " without it";
      expect_close(got, want, 1e-5, what);
    }
  }
}

TEST(TransformerOp, ConfigFieldsOutOfRangeAreNamed) {
  const Shape s{2, 8, 16, 2, 32};
  auto expect_error = [](TransformerConfig c, const std::string& field) {
    try {
      TransformerLayer layer(c);
      ADD_FAILURE() << field << ": no error";
    } catch (const deepspeed::OpError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  auto c = config_for(s, true);
  c.hidden_size = -1;
  expect_error(c, "hidden_size");
  c = config_for(s, true);
  c.heads = 3;
  expect_error(c, "heads");
  c = config_for(s, true);
  c.attn_dropout_ratio = 1.0f;
  expect_error(c, "attn_dropout_ratio");
  c = config_for(s, true);
  c.hidden_dropout_ratio = -1.0f;
  expect_error(c, "hidden_dropout_ratio");
  c = config_for(s, true);
  c.initializer_range = -1.0f;
  expect_error(c, "initializer_range");
  c = config_for(s, true);
  c.num_hidden_layers = -1;
  expect_error(c, "num_hidden_layers");
  c = config_for(s, true);
  c.layer_norm_eps = 0.0f;
  expect_error(c, "layer_norm_eps");
}

TEST(TransformerOp, InputsThatDoNotFitAreNamed) {
  const Shape s{2, 8, 16, 2, 32};
  TransformerLayer layer(config_for(s, true));
  auto expect_error = [&](const torch::Tensor& x, const torch::Tensor& mask, const std::string& words) {
    try {
      layer(x, mask);
      ADD_FAILURE() << words << ": no error";
    } catch (const deepspeed::OpError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error(torch::randn({2, 8, 12}), {}, "hidden must be [batch, seq, 16]");
  expect_error(torch::randn({3, 8, 16}), {}, "exceeds TransformerConfig.batch_size");
  expect_error(torch::randn({2, 8, 16}, torch::kDouble), {}, "the parameters");
  expect_error(torch::randn({2, 8, 16}), torch::zeros({2, 1, 8}), "does not broadcast");
  expect_error(torch::randn({2, 8, 16}), torch::zeros({2, 1, 1, 7}), "does not broadcast");
  expect_error(torch::randn({2, 8, 16}), torch::ones({2, 1, 1, 8}, torch::kBool), "additive");
}

TEST(TransformerOp, ParametersFollowDeepSpeedsNamesShapesAndInitialisation) {
  auto c = config_for({2, 8, 64, 4, 256}, true);
  c.num_hidden_layers = 8;
  TransformerLayer layer(c);
  const std::vector<std::string> names = {"attn_qkvw", "attn_qkvb", "attn_ow", "attn_ob", "attn_nw",  "attn_nb",
                                          "inter_w",   "inter_b",   "output_w", "output_b", "norm_w", "norm_b"};
  const auto named = layer->named_parameters();
  ASSERT_EQ(named.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(named.keys()[i], names[i]);
  EXPECT_EQ(layer->attn_qkvw.sizes(), torch::IntArrayRef({192, 64}));
  EXPECT_EQ(layer->output_w.sizes(), torch::IntArrayRef({64, 256}));
  EXPECT_NEAR(layer->attn_qkvw.std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(layer->output_w.std().item<double>(), 0.02 / std::sqrt(16.0), 0.0005);
  EXPECT_TRUE(torch::equal(layer->norm_w, torch::ones({64})));
  EXPECT_TRUE(torch::equal(layer->inter_b, torch::zeros({256})));
}

}  // namespace
