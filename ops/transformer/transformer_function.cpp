#include "transformer/transformer_function.h"

#include <cmath>
#include <unordered_set>

#include <c10/core/DeviceGuard.h>
#include <torch/autograd.h>

#include "transformer/primitives.h"

namespace deepspeed::ops::transformer_detail {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

enum Param { kQkvW, kQkvB, kOutW, kOutB, kAttnNormW, kAttnNormB, kInterW, kInterB, kOutputW, kOutputB, kNormW,
             kNormB, kParamCount };

// The activations backward may read; which are kept depends on the layer-norm placement and
// the memory options (forward leaves the others undefined).
enum Saved {
  kInput,       // x [rows, h]: the QKV GEMM's input (post-LN) or LN1's input (pre-LN)
  kAttnInput,   // pre-LN: LN1(x), the QKV GEMM's input
  kLn1Mean, kLn1Rstd,
  kHeads,       // q, k, v as [3, batch * heads, seq, head_dim]
  kProbs,       // softmax output
  kDropped,     // its dropped-out copy (unless attn_dropout_checkpoint)
  kContext,     // attention context [rows, h]: the output projection's input
  kAddRes,      // LN2's input (unless normalize_invertible)
  kFf1Input,    // LN2's output, the first FFN GEMM's input
  kLn2Mean, kLn2Rstd,
  kGeluInput,   // the first FFN GEMM's output, before its bias
  kGeluOutput,  // the second FFN GEMM's input (unless gelu_checkpoint)
  kLn3Input,    // post-LN: the final LN's input (unless normalize_invertible)
  kLn3Output,   // post-LN with normalize_invertible: the layer's output
  kLn3Mean, kLn3Rstd,
  kSavedCount
};
// Where the saved output follows the parameters and the activations in the saved list.
constexpr int kOutputSlot = static_cast<int>(kParamCount) + static_cast<int>(kSavedCount);

const Primitives& primitives_for(const LayerSpec& spec) {
  if (spec.use_kernels) {
    if (const Primitives* p = cuda_primitives(spec.stochastic)) return *p;
  }
  return aten_primitives();
}

DropoutSite site(const LayerSpec& spec, int which) {
  const float ratio = which == 0 ? spec.attn_dropout : spec.hidden_dropout;
  return {ratio, spec.seed, spec.offset + static_cast<uint64_t>(which)};
}

// A column sum in fp32, rounded to the parameter's dtype.
Tensor column_sum(const Tensor& t, const Tensor& like) {
  return t.sum(0, false, torch::kFloat).to(like.scalar_type());
}

int64_t activation_bytes(const std::vector<Tensor>& saved) {
  std::unordered_set<const void*> seen;
  int64_t bytes = 0;
  for (const auto& t : saved) {
    if (!t.defined()) continue;
    const auto& storage = t.storage();
    if (seen.insert(storage.unsafeGetStorageImpl()).second) bytes += static_cast<int64_t>(storage.nbytes());
  }
  return bytes;
}

struct Shape {
  int64_t batch, seq, hidden, heads, head_dim, rows;
};

class TransformerFunction : public torch::autograd::Function<TransformerFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const torch::optional<Tensor>& mask_arg,
                        at::TensorList params, const LayerSpec& spec, bool save, ForwardStats* stats) {
    const auto& P = primitives_for(spec);
    const Tensor mask = mask_arg ? *mask_arg : Tensor();
    const Shape s{x.size(0), x.size(1), x.size(2), spec.heads, x.size(2) / spec.heads, x.size(0) * x.size(1)};
    std::vector<Tensor> keep(kSavedCount);
    const Tensor x2 = x.view({s.rows, s.hidden});

    Tensor attn_in = x2;
    if (spec.pre_layer_norm) {
      auto ln1 = P.layer_norm(x2, params[kNormW], params[kNormB], spec.eps);
      attn_in = ln1.y;
      keep[kAttnInput] = ln1.y;
      keep[kLn1Rstd] = ln1.rstd;
      if (!spec.normalize_invertible) {
        keep[kInput] = x2;
        keep[kLn1Mean] = ln1.mean;
      }
    } else {
      keep[kInput] = x2;
    }

    // [rows, 3h] -> [3, batch * heads, seq, head_dim]
    const Tensor qkv = torch::addmm(params[kQkvB], attn_in, params[kQkvW].t());
    const Tensor heads = qkv.view({s.batch, s.seq, 3, s.heads, s.head_dim})
                             .permute({2, 0, 3, 1, 4})
                             .reshape({3, s.batch * s.heads, s.seq, s.head_dim});
    keep[kHeads] = heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    Tensor scores = torch::empty({s.batch * s.heads, s.seq, s.seq}, x.options());
    torch::baddbmm_out(scores, scores, heads[0], heads[1].transpose(1, 2), 0.0, scale);
    auto [probs, dropped] =
        P.softmax_dropout(scores.view({s.batch, s.heads, s.seq, s.seq}), mask, site(spec, 0));
    scores = Tensor();
    keep[kProbs] = probs;
    if (dropped.defined() && !spec.attn_dropout_checkpoint) keep[kDropped] = dropped;
    const Tensor attn = dropped.defined() ? dropped : probs;
    const Tensor context = torch::bmm(attn.view({s.batch * s.heads, s.seq, s.seq}), heads[2])
                               .view({s.batch, s.heads, s.seq, s.head_dim})
                               .permute({0, 2, 1, 3})
                               .reshape({s.rows, s.hidden});
    keep[kContext] = context;

    const Tensor attn_out = torch::mm(context, params[kOutW].t());
    const Tensor add_res = P.bias_dropout_residual(attn_out, params[kOutB], x2, site(spec, 1));
    auto ln2 = P.layer_norm(add_res, params[kAttnNormW], params[kAttnNormB], spec.eps);
    keep[kFf1Input] = ln2.y;
    keep[kLn2Rstd] = ln2.rstd;
    if (!spec.normalize_invertible) {
      keep[kAddRes] = add_res;
      keep[kLn2Mean] = ln2.mean;
    }

    const Tensor gelu_in = torch::mm(ln2.y, params[kInterW].t());
    const Tensor gelu_out = P.bias_gelu(gelu_in, params[kInterB]);
    keep[kGeluInput] = gelu_in;
    if (!spec.gelu_checkpoint) keep[kGeluOutput] = gelu_out;
    const Tensor ff_out = torch::mm(gelu_out, params[kOutputW].t());

    Tensor out;
    if (spec.pre_layer_norm) {
      out = P.bias_dropout_residual(ff_out, params[kOutputB], add_res, site(spec, 2));
    } else {
      const Tensor ln3_in = P.bias_dropout_residual(ff_out, params[kOutputB], ln2.y, site(spec, 2));
      auto ln3 = P.layer_norm(ln3_in, params[kNormW], params[kNormB], spec.eps);
      out = ln3.y;
      keep[kLn3Rstd] = ln3.rstd;
      if (spec.normalize_invertible) {
        keep[kLn3Output] = out;
      } else {
        keep[kLn3Input] = ln3_in;
        keep[kLn3Mean] = ln3.mean;
      }
    }
    out = out.view({s.batch, s.seq, s.hidden});

    if (save) {
      if (stats) stats->saved_activation_bytes = activation_bytes(keep);
      std::vector<Tensor> to_save(params.begin(), params.end());
      // The layer's output is saved as the returned tensor itself, which autograd holds
      // without a reference cycle; the slot stays empty.
      const bool save_output = keep[kLn3Output].defined();
      keep[kLn3Output] = Tensor();
      to_save.insert(to_save.end(), keep.begin(), keep.end());
      to_save.push_back(save_output ? out : Tensor());
      ctx->save_for_backward(to_save);
      ctx->saved_data["batch"] = s.batch;
      ctx->saved_data["seq"] = s.seq;
      ctx->saved_data["heads"] = s.heads;
      ctx->saved_data["attn_dropout"] = static_cast<double>(spec.attn_dropout);
      ctx->saved_data["hidden_dropout"] = static_cast<double>(spec.hidden_dropout);
      ctx->saved_data["flags"] = static_cast<int64_t>(spec.pre_layer_norm) |
                                 static_cast<int64_t>(spec.normalize_invertible) << 1 |
                                 static_cast<int64_t>(spec.gelu_checkpoint) << 2 |
                                 static_cast<int64_t>(spec.attn_dropout_checkpoint) << 3 |
                                 static_cast<int64_t>(spec.stochastic) << 4 |
                                 static_cast<int64_t>(spec.use_kernels) << 5;
      ctx->saved_data["seed"] = static_cast<int64_t>(spec.seed);
      ctx->saved_data["offset"] = static_cast<int64_t>(spec.offset);
    } else if (stats) {
      stats->saved_activation_bytes = 0;
    }
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto all = ctx->get_saved_variables();
    const std::vector<Tensor> p(all.begin(), all.begin() + kParamCount);
    std::vector<Tensor> a(all.begin() + kParamCount, all.begin() + kOutputSlot);
    const Tensor output = all[kOutputSlot];
    if (output.defined()) a[kLn3Output] = output.view({-1, output.size(-1)});

    LayerSpec spec;
    const int64_t flags = ctx->saved_data["flags"].toInt();
    spec.pre_layer_norm = flags & 1;
    spec.normalize_invertible = flags & 2;
    spec.gelu_checkpoint = flags & 4;
    spec.attn_dropout_checkpoint = flags & 8;
    spec.stochastic = flags & 16;
    spec.use_kernels = flags & 32;
    spec.attn_dropout = static_cast<float>(ctx->saved_data["attn_dropout"].toDouble());
    spec.hidden_dropout = static_cast<float>(ctx->saved_data["hidden_dropout"].toDouble());
    spec.seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    spec.offset = static_cast<uint64_t>(ctx->saved_data["offset"].toInt());
    const auto& P = primitives_for(spec);
    const int64_t batch = ctx->saved_data["batch"].toInt(), seq = ctx->saved_data["seq"].toInt();
    const int64_t heads = ctx->saved_data["heads"].toInt();
    const int64_t hidden = p[kOutW].size(0);
    const Shape s{batch, seq, hidden, heads, hidden / heads, batch * seq};
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));

    const Tensor g = grad_outputs[0].contiguous().view({s.rows, s.hidden});
    std::vector<Tensor> dp(kParamCount);

    // The output residual: pre-LN y = a + drop(f); post-LN y = LN3(l), l = ln2 + drop(f).
    Tensor d_residual, d_ff;
    if (spec.pre_layer_norm) {
      d_residual = g;
    } else {
      const bool inv = spec.normalize_invertible;
      auto ln3 = P.layer_norm_backward(g, inv ? a[kLn3Output] : a[kLn3Input], inv, p[kNormW], p[kNormB],
                                       a[kLn3Mean], a[kLn3Rstd], Tensor());
      d_residual = ln3.dx;
      dp[kNormW] = ln3.dgamma.to(p[kNormW].scalar_type());
      dp[kNormB] = ln3.dbeta.to(p[kNormB].scalar_type());
    }
    d_ff = P.dropout(d_residual, site(spec, 2));

    // The feed-forward network.
    dp[kOutputB] = column_sum(d_ff, p[kOutputB]);
    const Tensor gelu_out =
        spec.gelu_checkpoint ? P.bias_gelu(a[kGeluInput], p[kInterB]) : a[kGeluOutput];
    dp[kOutputW] = torch::mm(d_ff.t(), gelu_out);
    Tensor d_gelu = P.bias_gelu_backward(torch::mm(d_ff, p[kOutputW]), a[kGeluInput], p[kInterB]);
    dp[kInterB] = column_sum(d_gelu, p[kInterB]);
    dp[kInterW] = torch::mm(d_gelu.t(), a[kFf1Input]);
    Tensor d_ff1 = torch::mm(d_gelu, p[kInterW]);
    d_gelu = Tensor();

    // LN2, with the residual's gradient: pre-LN adds it to LN2's input gradient (a feeds the
    // output residual), post-LN to LN2's output gradient (ln2 feeds it).
    const bool inv = spec.normalize_invertible;
    Tensor ln2_dy = d_ff1, ln2_residual = d_residual;
    if (!spec.pre_layer_norm) {
      ln2_dy = d_ff1.add_(d_residual);
      ln2_residual = Tensor();
    }
    auto ln2 = P.layer_norm_backward(ln2_dy, inv ? a[kFf1Input] : a[kAddRes], inv, p[kAttnNormW], p[kAttnNormB],
                                     a[kLn2Mean], a[kLn2Rstd], ln2_residual);
    dp[kAttnNormW] = ln2.dgamma.to(p[kAttnNormW].scalar_type());
    dp[kAttnNormB] = ln2.dbeta.to(p[kAttnNormB].scalar_type());
    const Tensor d_add_res = ln2.dx;

    // The attention block.
    const Tensor d_attn_out = P.dropout(d_add_res, site(spec, 1));
    dp[kOutB] = column_sum(d_attn_out, p[kOutB]);
    dp[kOutW] = torch::mm(d_attn_out.t(), a[kContext]);
    const Tensor d_context = torch::mm(d_attn_out, p[kOutW])
                                 .view({s.batch, s.seq, s.heads, s.head_dim})
                                 .permute({0, 2, 1, 3})
                                 .reshape({s.batch * s.heads, s.seq, s.head_dim});
    const Tensor& hq = a[kHeads];
    const DropoutSite attn_site = site(spec, 0);
    Tensor attn = a[kDropped];
    if (!attn.defined()) attn = attn_site.ratio > 0.0f ? P.dropout(a[kProbs], attn_site) : a[kProbs];
    auto d_heads = torch::empty({3, s.batch * s.heads, s.seq, s.head_dim}, g.options());
    Tensor d_q = d_heads[0], d_k = d_heads[1], d_v = d_heads[2];
    torch::bmm_out(d_v, attn.view({s.batch * s.heads, s.seq, s.seq}).transpose(1, 2), d_context);
    attn = Tensor();
    const Tensor d_scores = P.softmax_dropout_backward(torch::bmm(d_context, hq[2].transpose(1, 2)),
                                                       a[kProbs].view({s.batch * s.heads, s.seq, s.seq}), scale,
                                                       attn_site);
    torch::bmm_out(d_q, d_scores, hq[1]);
    torch::bmm_out(d_k, d_scores.transpose(1, 2), hq[0]);
    const Tensor d_qkv = d_heads.view({3, s.batch, s.heads, s.seq, s.head_dim})
                             .permute({1, 3, 0, 2, 4})
                             .reshape({s.rows, 3 * s.hidden});
    dp[kQkvB] = column_sum(d_qkv, p[kQkvB]);
    const Tensor& attn_in = spec.pre_layer_norm ? a[kAttnInput] : a[kInput];
    dp[kQkvW] = torch::mm(d_qkv.t(), attn_in);
    const Tensor d_attn_in = torch::mm(d_qkv, p[kQkvW]);

    Tensor d_x;
    if (spec.pre_layer_norm) {
      auto ln1 = P.layer_norm_backward(d_attn_in, inv ? a[kAttnInput] : a[kInput], inv, p[kNormW], p[kNormB],
                                       a[kLn1Mean], a[kLn1Rstd], d_add_res);
      d_x = ln1.dx;
      dp[kNormW] = ln1.dgamma.to(p[kNormW].scalar_type());
      dp[kNormB] = ln1.dbeta.to(p[kNormB].scalar_type());
    } else {
      d_x = d_attn_in + d_add_res;
    }

    // One gradient per input of forward: x, mask, the parameters, spec, save, stats.
    variable_list grads;
    grads.push_back(d_x.view({s.batch, s.seq, s.hidden}));
    grads.emplace_back();
    grads.insert(grads.end(), dp.begin(), dp.end());
    grads.emplace_back();
    grads.emplace_back();
    grads.emplace_back();
    return grads;
  }
};

}  // namespace

torch::Tensor transformer_apply(const LayerSpec& spec, const torch::Tensor& x, const torch::Tensor& mask,
                                const std::vector<torch::Tensor>& params, ForwardStats* stats) {
  bool needs_grad = x.requires_grad();
  for (const auto& p : params) needs_grad = needs_grad || p.requires_grad();
  const bool save = torch::GradMode::is_enabled() && needs_grad;
  // The kernels run on the current stream of the current device: make it x's.
  const c10::DeviceGuard device_guard(x.device());
  const torch::optional<Tensor> mask_arg = mask.defined() ? torch::optional<Tensor>(mask) : torch::nullopt;
  return TransformerFunction::apply(x, mask_arg, at::TensorList(params), spec, save, stats);
}

}  // namespace deepspeed::ops::transformer_detail
