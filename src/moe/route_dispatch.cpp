#include "moe/route_dispatch.h"

namespace deepspeed::moe {
namespace {

// `t` with a zero row after its last, which indices past the end (dropped routes, empty slots) read.
torch::Tensor with_zero_row(const torch::Tensor& t) { return torch::cat({t, t.new_zeros({1, t.size(1)})}); }

struct DispatchTokens : torch::autograd::Function<DispatchTokens> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& tokens,
                               const torch::Tensor& slots, const torch::Tensor& source) {
    ctx->save_for_backward({slots});
    return with_zero_row(tokens).index_select(0, source);
  }
  // A token's gradient is the sum of its routes' slots' gradients.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto slots = ctx->get_saved_variables()[0];
    const auto g = with_zero_row(grad[0].contiguous());
    torch::Tensor out;
    for (int64_t r = 0; r < slots.size(0); ++r) {
      auto part = g.index_select(0, slots[r]);
      out = out.defined() ? out.add_(part) : part;
    }
    return {out, torch::Tensor(), torch::Tensor()};
  }
};

struct CombineRoutes : torch::autograd::Function<CombineRoutes> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& expert_output,
                               const torch::Tensor& gates, const torch::Tensor& slots, const torch::Tensor& source) {
    ctx->save_for_backward({expert_output, gates, slots, source});
    const auto padded = with_zero_row(expert_output);
    torch::Tensor sum;
    for (int64_t r = 0; r < slots.size(0); ++r) {
      auto weighted = padded.index_select(0, slots[r]).to(torch::kFloat32).mul_(gates[r].unsqueeze(1));
      sum = sum.defined() ? sum.add_(weighted) : weighted;
    }
    return sum.to(expert_output.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto& expert_output = saved[0];
    const auto& gates = saved[1];
    const auto& slots = saved[2];
    const auto& source = saved[3];
    const auto g32 = grad[0].contiguous().to(torch::kFloat32);
    // Each slot's gradient: its route's gate times its token's output gradient.
    const int64_t rows = source.size(0);
    auto gate_of_slot = torch::zeros({rows + 1}, gates.options());
    gate_of_slot.scatter_(0, slots.reshape(-1), gates.reshape(-1));
    const auto grad_output = (with_zero_row(g32).index_select(0, source) * gate_of_slot.narrow(0, 0, rows).unsqueeze(1))
                                 .to(expert_output.scalar_type());
    // Each route's gate gradient: its expert output . its token's output gradient.
    const auto padded = with_zero_row(expert_output);
    std::vector<torch::Tensor> grad_gates;
    for (int64_t r = 0; r < slots.size(0); ++r) {
      grad_gates.push_back((padded.index_select(0, slots[r]).to(torch::kFloat32) * g32).sum(1));
    }
    return {grad_output, torch::stack(grad_gates), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

RouteMap route_map(const torch::Tensor& indices, const torch::Tensor& locations, const torch::Tensor& gates,
                   int64_t num_experts, int64_t capacity) {
  RouteMap m;
  m.buffer_rows = num_experts * capacity;
  const auto slot = indices * capacity + locations;
  m.slots = torch::where(indices >= 0, slot, torch::full_like(slot, m.buffer_rows));
  const int64_t tokens = indices.size(1);
  // Dropped routes write the scratch entry past the end; every kept slot is written once.
  auto source = torch::full({m.buffer_rows + 1}, tokens, m.slots.options());
  source.scatter_(0, m.slots.reshape(-1), torch::arange(tokens, m.slots.options()).expand_as(m.slots).reshape(-1));
  m.source = source.narrow(0, 0, m.buffer_rows);
  m.gates = gates;
  return m;
}

torch::Tensor dispatch_tokens(const torch::Tensor& tokens, const RouteMap& map) {
  return DispatchTokens::apply(tokens, map.slots, map.source);
}

torch::Tensor combine_routes(const torch::Tensor& expert_output, const RouteMap& map) {
  return CombineRoutes::apply(expert_output, map.gates, map.slots, map.source);
}

}  // namespace deepspeed::moe
