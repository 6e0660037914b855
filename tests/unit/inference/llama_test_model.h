// A tiny LLaMA-style decoder in plain torch::nn with Hugging Face's parameter names
// (model.embed_tokens, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
// post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head): rotary positions
// (rotate-half), RMSNorm, a gated SiLU MLP, no biases. Its forward is the reference the
// inference engine's LLaMA policy is compared with.
#pragma once

#include <cmath>
#include <limits>

#include <torch/torch.h>

namespace deepspeed::inference_test {

struct LlamaConfig {
  int64_t vocab = 96, d = 32, heads = 4, layers = 2, ffn = 48;
  double eps = 1e-6, theta = 10000.0;
};

struct RmsNorm : torch::nn::Module {
  RmsNorm(int64_t d, double eps) : eps(eps) { weight = register_parameter("weight", torch::ones({d})); }
  torch::Tensor forward(const torch::Tensor& x) {
    auto xf = x.to(torch::kFloat);
    return weight * (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
  }
  torch::Tensor weight;
  double eps;
};

struct LlamaBlock : torch::nn::Module {
  explicit LlamaBlock(const LlamaConfig& c) : c(c) {
    auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
    input_layernorm = register_module("input_layernorm", std::make_shared<RmsNorm>(c.d, c.eps));
    attn = register_module("self_attn", std::make_shared<torch::nn::Module>());
    q = attn->register_module("q_proj", linear(c.d, c.d));
    k = attn->register_module("k_proj", linear(c.d, c.d));
    v = attn->register_module("v_proj", linear(c.d, c.d));
    o = attn->register_module("o_proj", linear(c.d, c.d));
    post_attention_layernorm = register_module("post_attention_layernorm", std::make_shared<RmsNorm>(c.d, c.eps));
    mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    gate = mlp->register_module("gate_proj", linear(c.d, c.ffn));
    up = mlp->register_module("up_proj", linear(c.d, c.ffn));
    down = mlp->register_module("down_proj", linear(c.ffn, c.d));
    torch::NoGradGuard g;
    for (auto& p : parameters()) {
      if (p.dim() == 1) p.normal_(1.0, 0.1);  // norms not all ones: their weights are exercised
    }
  }
  static torch::Tensor rotate_half(const torch::Tensor& x) {
    const int64_t h = x.size(-1) / 2;
    return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
  }
  torch::Tensor forward(torch::Tensor x) {
    const int64_t b = x.size(0), t = x.size(1), hd = c.d / c.heads;
    auto h = input_layernorm->forward(x);
    auto split = [&](const torch::Tensor& y) { return y.view({b, t, c.heads, hd}).transpose(1, 2); };
    auto qh = split(q(h)), kh = split(k(h)), vh = split(v(h));
    auto inv_freq = torch::pow(c.theta, -torch::arange(0, hd, 2, torch::kFloat) / static_cast<double>(hd));
    auto freqs = torch::arange(t, torch::kFloat).unsqueeze(1) * inv_freq;
    auto emb = torch::cat({freqs, freqs}, -1);
    auto cos = emb.cos(), sin = emb.sin();
    qh = qh * cos + rotate_half(qh) * sin;
    kh = kh * cos + rotate_half(kh) * sin;
    auto scores = torch::matmul(qh, kh.transpose(-2, -1)) / std::sqrt(static_cast<double>(hd));
    auto mask = torch::ones({t, t}, torch::kBool).tril();
    scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
    auto a = torch::matmul(torch::softmax(scores, -1), vh).transpose(1, 2).reshape({b, t, c.d});
    x = x + o(a);
    auto m = post_attention_layernorm->forward(x);
    return x + down(torch::silu(gate(m)) * up(m));
  }
  LlamaConfig c;
  std::shared_ptr<RmsNorm> input_layernorm, post_attention_layernorm;
  std::shared_ptr<torch::nn::Module> attn, mlp;
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, gate{nullptr}, up{nullptr}, down{nullptr};
};

struct LlamaModel : torch::nn::Module {
  explicit LlamaModel(const LlamaConfig& c) : c(c) {
    model = register_module("model", std::make_shared<torch::nn::Module>());
    embed_tokens = model->register_module("embed_tokens", torch::nn::Embedding(c.vocab, c.d));
    layers = model->register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers; ++i) layers->push_back(std::make_shared<LlamaBlock>(c));
    norm = model->register_module("norm", std::make_shared<RmsNorm>(c.d, c.eps));
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.d, c.vocab).bias(false)));
  }
  // tokens [batch, seq] -> logits [batch, seq, vocab]
  torch::Tensor forward(const torch::Tensor& tokens) {
    auto x = embed_tokens(tokens);
    for (const auto& layer : *layers) x = layer->as<LlamaBlock>()->forward(x);
    return lm_head(norm->forward(x));
  }
  LlamaConfig c;
  std::shared_ptr<torch::nn::Module> model;
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  std::shared_ptr<RmsNorm> norm;
  torch::nn::Linear lm_head{nullptr};
};

}  // namespace deepspeed::inference_test
