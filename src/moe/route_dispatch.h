// Tokens into the experts' buffers and back, as gathers in both directions. Every slot of the
// [E * capacity] buffer holds at most one route and every route at most one slot, so the
// gradient of each gather is a gather too: no atomic scatter-add (which on a GPU serializes
// colliding bf16 rows), and the weighted sum over a token's routes is taken in fp32.
#pragma once

#include <torch/torch.h>

namespace deepspeed::moe {

struct RouteMap {
  torch::Tensor slots;   // [k, S] int64: each route's flat slot; E * capacity where dropped
  torch::Tensor source;  // [E * capacity] int64: each slot's token; S where the slot is empty
  torch::Tensor gates;   // [k, S] fp32: each route's weight (0 where dropped)
  int64_t buffer_rows = 0;  // E * capacity
};

// `indices`, `locations`: [k, S] from the gate (-1 where a route was dropped).
RouteMap route_map(const torch::Tensor& indices, const torch::Tensor& locations, const torch::Tensor& gates,
                   int64_t num_experts, int64_t capacity);

// [S, M] tokens -> [E * capacity, M] buffer (empty slots zero). Differentiable in `tokens`.
torch::Tensor dispatch_tokens(const torch::Tensor& tokens, const RouteMap& map);

// [E * capacity, M] expert outputs -> [S, M]: each token's routes weighted by their gates,
// summed in fp32, in the outputs' dtype. Differentiable in `expert_output` and `map.gates`.
torch::Tensor combine_routes(const torch::Tensor& expert_output, const RouteMap& map);

}  // namespace deepspeed::moe
