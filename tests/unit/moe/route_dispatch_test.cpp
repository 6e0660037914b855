// Tokens into expert buffers and back (moe/route_dispatch.h) against the same maps written as
// dense products with autograd's own ops (DeepSpeed's einsum formulation): outputs and the
// gradients of the tokens, the expert outputs and the gates agree, dropped routes included.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "moe/route_dispatch.h"

namespace deepspeed::moe {
namespace {

TEST(RouteDispatch, GathersAndTheirGradientsEqualTheDenseProducts) {
  torch::manual_seed(5);
  const int64_t tokens = 7, experts = 3, capacity = 3, model = 4;
  // Two routes per token, each expert's 3 slots filled by first routes, then second ones; the
  // second routes that find their expert full are dropped, and token 6's first route too.
  const auto indices = torch::tensor({{0, 1, 2, 0, 1, 2, -1}, {1, 2, -1, -1, 0, -1, -1}}, torch::kInt64);
  const auto locations = torch::tensor({{0, 0, 0, 1, 1, 1, 0}, {2, 2, 0, 0, 2, 0, 0}}, torch::kInt64);
  auto gates = torch::rand({2, tokens}, torch::kFloat64).requires_grad_(true);
  auto x = torch::randn({tokens, model}, torch::kFloat64).requires_grad_(true);
  auto w = torch::randn({experts * capacity, model}, torch::kFloat64);

  // Dense: dispatch mask and combine weights [S, E*C].
  auto mask = torch::zeros({tokens, experts * capacity}, torch::kFloat64);
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t t = 0; t < tokens; ++t) {
      const auto e = indices[r][t].item<int64_t>();
      if (e >= 0) mask[t][e * capacity + locations[r][t].item<int64_t>()] = 1.0;
    }
  }
  auto kept_gates = gates * (indices >= 0).to(torch::kFloat64);
  auto combine = torch::zeros({tokens, experts * capacity}, torch::kFloat64);
  for (int64_t r = 0; r < 2; ++r) {
    auto one = torch::zeros({tokens, experts * capacity}, torch::kFloat64);
    for (int64_t t = 0; t < tokens; ++t) {
      const auto e = indices[r][t].item<int64_t>();
      if (e >= 0) one[t][e * capacity + locations[r][t].item<int64_t>()] = 1.0;
    }
    combine = combine + one * kept_gates[r].unsqueeze(1);
  }
  auto buffer_dense = mask.t().matmul(x);
  auto expert_out_dense = torch::tanh(buffer_dense * w);
  auto out_dense = combine.matmul(expert_out_dense);
  const auto dy = torch::randn({tokens, model}, torch::kFloat64);
  auto grads_dense = torch::autograd::grad({out_dense}, {x, gates}, {dy});

  auto x2 = x.detach().clone().requires_grad_(true);
  auto gates2 = gates.detach().clone().requires_grad_(true);
  const auto map = route_map(indices, locations, gates2 * (indices >= 0).to(torch::kFloat64), experts, capacity);
  auto buffer = dispatch_tokens(x2, map);
  EXPECT_TRUE(torch::allclose(buffer, buffer_dense)) << "dispatch";
  auto out = combine_routes(torch::tanh(buffer * w), map);
  EXPECT_TRUE(torch::allclose(out, out_dense)) << "combine";
  auto grads = torch::autograd::grad({out}, {x2, gates2}, {dy});
  EXPECT_TRUE(torch::allclose(grads[0], grads_dense[0])) << "token gradients\n" << grads[0] << grads_dense[0];
  EXPECT_TRUE(torch::allclose(grads[1], grads_dense[1])) << "gate gradients\n" << grads[1] << grads_dense[1];
}

}  // namespace
}  // namespace deepspeed::moe
