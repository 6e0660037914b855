// The sparse attention as one autograd node: forward keeps q, k, v, the output and the row
// log-sum-exp (memory of the size of q, not of the scores); backward recomputes the rest on the
// device the tensors live on.
#include <torch/autograd.h>

#include "sparse_attention/block_sparse_attention.h"

namespace deepspeed::ops::sparse_attention::attention_detail {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class BlockSparseAttentionFunction : public torch::autograd::Function<BlockSparseAttentionFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const TileIndex& index, const Masks& masks,
                               const Problem& problem) {
    const ForwardResult r =
        q.is_cuda() ? cuda_forward(q, k, v, index, masks, problem) : cpu_forward(q, k, v, index, masks, problem);
    ctx->save_for_backward({q, k, v, r.out, r.lse});
    ctx->saved_data["tile"] = index.tile;
    ctx->saved_data["tiles"] = index.tiles;
    ctx->saved_data["row_offsets"] = index.row_offsets;
    ctx->saved_data["row_indices"] = index.row_indices;
    ctx->saved_data["col_offsets"] = index.col_offsets;
    ctx->saved_data["col_indices"] = index.col_indices;
    ctx->saved_data["rpe"] = masks.rpe;
    ctx->saved_data["key_padding"] = masks.key_padding;
    ctx->saved_data["attn"] = masks.attn;
    ctx->saved_data["scale"] = problem.scale;
    ctx->saved_data["causal"] = problem.causal;
    return r.out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    TileIndex index;
    index.tile = ctx->saved_data["tile"].toInt();
    index.tiles = ctx->saved_data["tiles"].toInt();
    index.row_offsets = ctx->saved_data["row_offsets"].toTensor();
    index.row_indices = ctx->saved_data["row_indices"].toTensor();
    index.col_offsets = ctx->saved_data["col_offsets"].toTensor();
    index.col_indices = ctx->saved_data["col_indices"].toTensor();
    const Masks masks{ctx->saved_data["rpe"].toTensor(), ctx->saved_data["key_padding"].toTensor(),
                      ctx->saved_data["attn"].toTensor()};
    const Problem problem{ctx->saved_data["scale"].toDouble(), ctx->saved_data["causal"].toBool()};
    const torch::Tensor dout = grads[0].contiguous();
    const auto g = saved[0].is_cuda()
                       ? cuda_backward(saved[0], saved[1], saved[2], saved[3], saved[4], dout, index, masks, problem)
                       : cpu_backward(saved[0], saved[1], saved[2], saved[3], saved[4], dout, index, masks, problem);
    return {g[0], g[1], g[2], torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor block_sparse_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const TileIndex& index, const Masks& masks, const Problem& problem) {
  return BlockSparseAttentionFunction::apply(q, k, v, index, masks, problem);
}

}  // namespace deepspeed::ops::sparse_attention::attention_detail
