// Megatron's _VocabParallelCrossEntropy: the loss over a vocabulary split across the group,
// from three all-reduces of per-token values (max, sum of exponentials, target logit) instead of
// a gather of the logits. Backward is local: softmax minus the one-hot target, on this slice.
#include <deepspeed/tensor_parallel.h>

namespace deepspeed::tensor_parallel {
namespace {

struct VocabParallelCrossEntropy : torch::autograd::Function<VocabParallelCrossEntropy> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& target, int64_t group_address) {
    auto& group = *reinterpret_cast<comm::ProcessGroup*>(group_address);
    auto x = logits.detach().to(torch::kFloat32);
    auto max = std::get<0>(x.max(-1));
    group.all_reduce(max, comm::ReduceOp::Max);
    x = x - max.unsqueeze(-1);
    const int64_t part = x.size(-1);
    const int64_t start = group.rank() * part;
    const auto outside = (target < start) | (target >= start + part);
    const auto local = (target - start).masked_fill(outside, 0);
    auto predicted = x.gather(-1, local.unsqueeze(-1)).squeeze(-1).masked_fill(outside, 0.0);
    group.all_reduce(predicted);
    auto exp = x.exp();
    auto sum = exp.sum(-1);
    group.all_reduce(sum);
    const auto loss = sum.log() - predicted;
    ctx->save_for_backward({exp / sum.unsqueeze(-1), local, outside});
    return loss.to(logits.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    const auto saved = ctx->get_saved_variables();
    auto grad = saved[0].clone();
    const auto inside = saved[2].logical_not().to(grad.scalar_type());
    grad.scatter_add_(-1, saved[1].unsqueeze(-1), -inside.unsqueeze(-1));
    grad.mul_(g[0].to(grad.scalar_type()).unsqueeze(-1));
    return {grad, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor vocab_parallel_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target,
                                           comm::ProcessGroup& group) {
  return VocabParallelCrossEntropy::apply(logits, target, reinterpret_cast<int64_t>(&group));
}

}  // namespace deepspeed::tensor_parallel
