// The transformer op's block written with torch::nn (Linear, LayerNorm, explicit attention),
// the reference the op is tested against (tests/unit/ops, tests/gpu), and the helpers that
// give both the same weights and the same dropout masks.
#pragma once

#include <array>
#include <cmath>

#include <torch/torch.h>

#include <deepspeed/transformer.h>

#include "transformer/primitives.h"

namespace ds_test {

struct Shape {
  int64_t batch, seq, hidden, heads, intermediate;
};

// A layer of this shape with two layers' init range and eps 1e-5, as the tests use it.
inline deepspeed::ops::TransformerConfig config_for(const Shape& s, bool pre_ln, float dropout = 0.0f,
                                                    int64_t seed = 1234) {
  deepspeed::ops::TransformerConfig c;
  c.batch_size = s.batch;
  c.hidden_size = s.hidden;
  c.intermediate_size = s.intermediate;
  c.heads = s.heads;
  c.attn_dropout_ratio = dropout;
  c.hidden_dropout_ratio = dropout;
  c.num_hidden_layers = 2;
  c.initializer_range = 0.02f;
  c.layer_norm_eps = 1e-5f;
  c.seed = seed;
  c.pre_layer_norm = pre_ln;
  return c;
}

struct ReferenceLayerImpl : torch::nn::Module {
  ReferenceLayerImpl(int64_t hidden, int64_t heads_, int64_t intermediate, bool pre_layer_norm, double eps)
      : heads(heads_), pre_ln(pre_layer_norm) {
    qkv = register_module("qkv", torch::nn::Linear(hidden, 3 * hidden));
    attn_out = register_module("attn_out", torch::nn::Linear(hidden, hidden));
    inter = register_module("inter", torch::nn::Linear(hidden, intermediate));
    output = register_module("output", torch::nn::Linear(intermediate, hidden));
    attn_norm = register_module("attn_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden}).eps(eps)));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden}).eps(eps)));
    // Random biases and norm parameters too, so that every gradient is exercised.
    torch::NoGradGuard no_grad;
    for (auto& p : parameters()) p.normal_(0.0, 0.2);
    attn_norm->weight.normal_(1.0, 0.2);
    norm->weight.normal_(1.0, 0.2);
  }

  // factors: the dropout factors of the attention probabilities [b, heads, s, s], the
  // attention output and the FFN output [b, s, h]; undefined for no dropout.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask,
                        const std::array<torch::Tensor, 3>& factors = {}) {
    const int64_t b = x.size(0), s = x.size(1), h = x.size(2), d = h / heads;
    const auto a_in = pre_ln ? norm(x) : x;
    const auto qkv_heads = qkv(a_in).view({b, s, 3, heads, d}).permute({2, 0, 3, 1, 4});
    const auto q = qkv_heads[0], k = qkv_heads[1], v = qkv_heads[2];
    auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
    if (mask.defined()) scores = scores + mask;
    auto probs = torch::softmax(scores, -1);
    if (factors[0].defined()) probs = probs * factors[0];
    const auto context = torch::matmul(probs, v).permute({0, 2, 1, 3}).reshape({b, s, h});
    auto ao = attn_out(context);
    if (factors[1].defined()) ao = ao * factors[1];
    const auto add = x + ao;
    const auto ln2 = attn_norm(add);
    auto ff = output(torch::gelu(inter(ln2), "tanh"));
    if (factors[2].defined()) ff = ff * factors[2];
    return pre_ln ? add + ff : norm(ln2 + ff);
  }

  int64_t heads;
  bool pre_ln;
  torch::nn::Linear qkv{nullptr}, attn_out{nullptr}, inter{nullptr}, output{nullptr};
  torch::nn::LayerNorm attn_norm{nullptr}, norm{nullptr};
};
TORCH_MODULE(ReferenceLayer);

// Gives the op the reference's weights.
inline void load_reference(deepspeed::ops::TransformerLayer& layer, ReferenceLayer& ref) {
  torch::NoGradGuard no_grad;
  layer->attn_qkvw.copy_(ref->qkv->weight);
  layer->attn_qkvb.copy_(ref->qkv->bias);
  layer->attn_ow.copy_(ref->attn_out->weight);
  layer->attn_ob.copy_(ref->attn_out->bias);
  layer->attn_nw.copy_(ref->attn_norm->weight);
  layer->attn_nb.copy_(ref->attn_norm->bias);
  layer->inter_w.copy_(ref->inter->weight);
  layer->inter_b.copy_(ref->inter->bias);
  layer->output_w.copy_(ref->output->weight);
  layer->output_b.copy_(ref->output->bias);
  layer->norm_w.copy_(ref->norm->weight);
  layer->norm_b.copy_(ref->norm->bias);
}

// The reference's parameters in the op's order, for comparing gradients.
inline std::vector<torch::Tensor> reference_params(ReferenceLayer& ref) {
  return {ref->qkv->weight,       ref->qkv->bias,       ref->attn_out->weight, ref->attn_out->bias,
          ref->attn_norm->weight, ref->attn_norm->bias, ref->inter->weight,    ref->inter->bias,
          ref->output->weight,    ref->output->bias,    ref->norm->weight,     ref->norm->bias};
}

inline std::vector<torch::Tensor> layer_params(deepspeed::ops::TransformerLayer& layer) {
  return {layer->attn_qkvw, layer->attn_qkvb, layer->attn_ow,  layer->attn_ob,  layer->attn_nw, layer->attn_nb,
          layer->inter_w,   layer->inter_b,   layer->output_w, layer->output_b, layer->norm_w,  layer->norm_b};
}

inline const char* const kParamNames[12] = {"attn_qkvw", "attn_qkvb", "attn_ow",  "attn_ob",  "attn_nw", "attn_nb",
                                            "inter_w",   "inter_b",   "output_w", "output_b", "norm_w",  "norm_b"};

// The dropout factors the layer uses on its `call`-th training forward (counting from 0).
inline std::array<torch::Tensor, 3> layer_dropout(const deepspeed::ops::TransformerConfig& c, int64_t batch,
                                                  int64_t seq, uint64_t call, torch::Device device) {
  using deepspeed::ops::transformer_detail::dropout_factors;
  const auto seed = static_cast<uint64_t>(c.seed);
  std::array<torch::Tensor, 3> f;
  if (c.attn_dropout_ratio > 0) {
    f[0] = dropout_factors(batch * c.heads * seq * seq, {c.attn_dropout_ratio, seed, 3 * call})
               .view({batch, c.heads, seq, seq})
               .to(device);
  }
  if (c.hidden_dropout_ratio > 0) {
    for (int site = 1; site <= 2; ++site) {
      f[site] = dropout_factors(batch * seq * c.hidden_size, {c.hidden_dropout_ratio, seed, 3 * call + site})
                    .view({batch, seq, c.hidden_size})
                    .to(device);
    }
  }
  return f;
}

// max |a - b| / max |b|
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  const auto af = a.to(torch::kDouble).cpu(), bf = b.to(torch::kDouble).cpu();
  return (af - bf).abs().max().item<double>() / std::max(bf.abs().max().item<double>(), 1e-30);
}

}  // namespace ds_test
