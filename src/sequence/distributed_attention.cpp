// DeepSpeed-Ulysses' _SeqAllToAll and DistributedAttention.
#include <deepspeed/errors.h>
#include <deepspeed/sequence.h>

namespace deepspeed::sequence {
namespace {

torch::Tensor exchange(const torch::Tensor& input, comm::ProcessGroup& group, int64_t scatter, int64_t gather) {
  const int64_t n = group.size();
  const int64_t size = input.size(scatter);
  if (size % n != 0) {
    throw EngineError("sequence parallel all-to-all: dimension " + std::to_string(scatter) + " (" +
                      std::to_string(size) + ") is not divisible by the sequence parallel size " + std::to_string(n));
  }
  // [n, ...]: part i (of the scatter dimension) first, for rank i.
  auto send = torch::stack(input.chunk(n, scatter), 0).contiguous();
  auto received = torch::empty_like(send);
  group.all_to_all_single(received, send);
  return torch::cat(received.unbind(0), gather);
}

struct SeqAllToAll : torch::autograd::Function<SeqAllToAll> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               int64_t group_address, int64_t scatter, int64_t gather) {
    ctx->saved_data["group"] = group_address;
    ctx->saved_data["scatter"] = scatter;
    ctx->saved_data["gather"] = gather;
    return exchange(input, *reinterpret_cast<comm::ProcessGroup*>(group_address), scatter, gather);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    auto& group = *reinterpret_cast<comm::ProcessGroup*>(ctx->saved_data["group"].toInt());
    return {exchange(g[0], group, ctx->saved_data["gather"].toInt(), ctx->saved_data["scatter"].toInt()),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor seq_all_to_all(const torch::Tensor& input, comm::ProcessGroup& group, int64_t scatter_dim,
                             int64_t gather_dim) {
  if (group.size() == 1) return input;
  const int64_t dims = input.dim();
  return SeqAllToAll::apply(input, reinterpret_cast<int64_t>(&group), (scatter_dim + dims) % dims,
                            (gather_dim + dims) % dims);
}

torch::Tensor sequence_shard(const torch::Tensor& whole, int64_t dim, const comm::ProcessGroup& group) {
  const int64_t size = whole.size(dim), n = group.size();
  if (size % n != 0) {
    throw EngineError("sequence_shard: the sequence length " + std::to_string(size) +
                      " is not divisible by the sequence parallel size " + std::to_string(n));
  }
  return whole.narrow(dim, group.rank() * (size / n), size / n);
}

DistributedAttention::DistributedAttention(LocalAttention local_attention, std::shared_ptr<comm::ProcessGroup> group,
                                           int64_t scatter_idx)
    : local_attention_(std::move(local_attention)), group_(std::move(group)), scatter_idx_(scatter_idx) {
  if (!local_attention_) throw EngineError("DistributedAttention: local_attention is empty");
}

torch::Tensor DistributedAttention::forward(const torch::Tensor& query, const torch::Tensor& key,
                                            const torch::Tensor& value, int64_t batch_dim_idx) const {
  if (batch_dim_idx != 0 && batch_dim_idx != 1) {
    throw EngineError("DistributedAttention: batch_dim_idx must be either 0 or 1");
  }
  if (!group_) throw EngineError("DistributedAttention: no sequence parallel group (set_group before forward)");
  const int64_t seq_dim = batch_dim_idx == 0 ? 1 : 0;
  // Scatter the heads, gather the sequence: every rank then holds the whole sequence for
  // heads/P of the heads, which the local attention needs (it mixes all positions).
  auto q = seq_all_to_all(query, *group_, scatter_idx_, seq_dim);
  auto k = seq_all_to_all(key, *group_, scatter_idx_, seq_dim);
  auto v = seq_all_to_all(value, *group_, scatter_idx_, seq_dim);
  auto context = local_attention_(q, k, v);
  // The inverse: scatter the sequence, gather the heads.
  return seq_all_to_all(context, *group_, seq_dim, scatter_idx_);
}

}  // namespace deepspeed::sequence
