#include "moe/all_to_all.h"

#include <cstdint>

namespace deepspeed::moe {
namespace {

torch::Tensor exchange(const torch::Tensor& input, comm::ProcessGroup& group) {
  auto in = input.contiguous();
  auto out = torch::empty_like(in);
  group.all_to_all_single(out, in);
  return out;
}

struct AllToAll : torch::autograd::Function<AllToAll> {
  // The group travels as its address: autograd's saved data holds IValues only.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               int64_t group_address) {
    ctx->saved_data["group"] = group_address;
    return exchange(input, *reinterpret_cast<comm::ProcessGroup*>(group_address));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    auto* group = reinterpret_cast<comm::ProcessGroup*>(ctx->saved_data["group"].toInt());
    return {exchange(grad[0], *group), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor all_to_all(const torch::Tensor& input, comm::ProcessGroup& group) {
  if (group.size() == 1) return input.contiguous();
  return AllToAll::apply(input, reinterpret_cast<int64_t>(&group));
}

}  // namespace deepspeed::moe
