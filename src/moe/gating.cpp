// The gating functions of DeepSpeed's sharded_moe.py, step for step; comments name where a
// choice is ours.
#include <deepspeed/moe.h>

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include <deepspeed/errors.h>

namespace deepspeed::moe {
namespace {

// ceil(S / E * capacity_factor), at least min_capacity: computed as DeepSpeed's _capacity is,
// in float32 (S / E is a Python float times a float32 tensor).
int64_t capacity_of(int64_t tokens, int64_t experts, double capacity_factor, int64_t min_capacity) {
  const float ratio = static_cast<float>(static_cast<double>(tokens) / static_cast<double>(experts));
  const auto capacity = static_cast<int64_t>(std::ceil(ratio * static_cast<float>(capacity_factor)));
  return std::max(capacity, min_capacity);
}

// drop_tokens off: every route keeps its token; the capacity is the fullest expert's count,
// the largest over the expert-parallel group (every rank's buffers must have one shape).
int64_t capacity_for_all(const torch::Tensor& exp_counts, const GatingOptions& options) {
  auto most = exp_counts.max().reshape({1}).to(torch::kInt64);
  if (options.ep_group && options.ep_group->size() > 1) {
    auto on_device = most.to(options.ep_group->device());
    options.ep_group->all_reduce(on_device, comm::ReduceOp::Max);
    most = on_device.cpu();
  }
  return most.item<int64_t>();
}

torch::Tensor gumbel_like(const torch::Tensor& t) {
  // -log(-log(U)), U uniform on (0, 1): Gumbel(0, 1), as torch.distributions.Gumbel samples it.
  auto u = torch::rand_like(t).clamp(std::numeric_limits<float>::min(), 1.0 - std::numeric_limits<float>::epsilon());
  return -torch::log(-torch::log(u));
}

void check_logits(const torch::Tensor& logits, const char* what) {
  if (logits.dim() != 2 || logits.size(1) < 1) {
    throw EngineError(fmt::format("{}: logits must be [tokens, experts], got {}", what, c10::str(logits.sizes())));
  }
}

// The routes of a [S, E] mask (at most one per row), as [S] expert indices (-1: none).
torch::Tensor route_indices(const torch::Tensor& mask, const torch::Tensor& chosen) {
  return torch::where(mask.sum(1) > 0, chosen, torch::full_like(chosen, -1));
}

}  // namespace

GateDecision top1gating(torch::Tensor logits, const GatingOptions& options, const torch::Tensor& used_token) {
  check_logits(logits, "top1gating");
  logits = logits.to(torch::kFloat32);
  const int64_t tokens = logits.size(0), experts = logits.size(1);
  auto gates = torch::softmax(logits, 1);
  const bool rsample = options.noisy_gate_policy && *options.noisy_gate_policy == "RSample";
  auto indices1 = torch::argmax(rsample ? logits + gumbel_like(logits) : gates, 1);
  auto mask1 = torch::one_hot(indices1, experts);
  if (used_token.defined()) mask1 = mask1 * used_token.reshape({-1, 1}).to(mask1.scalar_type());
  GateDecision d;
  d.num_experts = experts;
  d.exp_counts = mask1.sum(0).detach();
  int64_t capacity = capacity_of(tokens, experts, options.capacity_factor, options.min_capacity);
  if (!options.drop_tokens) capacity = std::min(capacity_for_all(d.exp_counts, options), tokens);
  d.l_aux = (gates.mean(0) * mask1.to(torch::kFloat32).mean(0)).sum() * static_cast<double>(experts);
  if (tokens < options.min_capacity) {
    throw EngineError(fmt::format("top1gating: {} tokens, fewer than min_capacity {}: set min_capacity to 0 or give "
                                  "more tokens per batch",
                                  tokens, options.min_capacity));
  }
  // The tokens an expert keeps: with random token selection the `capacity` of highest random
  // score; without it DeepSpeed takes torch.topk of a 0/1 mask, whose choice among the ties is
  // unspecified: we keep the first ones (by position), as GShard does.
  if (options.use_rts) {
    const auto scores = mask1.to(torch::kFloat32) * torch::rand(mask1.sizes(), logits.options());
    const auto keep = std::get<1>(torch::topk(scores, std::min(capacity, tokens), 0));
    mask1 = mask1 * torch::zeros_like(mask1).scatter_(0, keep, 1);
  } else {
    mask1 = mask1 * (torch::cumsum(mask1, 0) - 1 < capacity).to(mask1.scalar_type());
  }
  const auto locations1 = torch::cumsum(mask1, 0) - 1;
  d.capacity = capacity;
  d.indices = route_indices(mask1, indices1).unsqueeze(0);
  d.locations = (locations1 * mask1).sum(1).unsqueeze(0);
  d.gates = (gates * mask1.to(torch::kFloat32)).sum(1).unsqueeze(0);
  return d;
}

GateDecision top2gating(torch::Tensor logits, const GatingOptions& options) {
  check_logits(logits, "top2gating");
  logits = logits.to(torch::kFloat32);
  const int64_t tokens = logits.size(0), experts = logits.size(1);
  if (experts < 2) throw EngineError("top2gating: 2 routes per token need at least 2 experts, got 1");
  auto gates = torch::softmax(logits, 1);
  auto indices1 = torch::argmax(gates, 1);
  auto mask1 = torch::one_hot(indices1, experts);
  if (options.top2_2nd_expert_sampling) logits = logits + gumbel_like(logits);
  auto indices2 = torch::argmax(logits.masked_fill(mask1.to(torch::kBool), -std::numeric_limits<float>::infinity()), 1);
  auto mask2 = torch::one_hot(indices2, experts);
  auto locations1 = torch::cumsum(mask1, 0) - 1;
  // The second routes queue behind every first route of their expert.
  auto locations2 = torch::cumsum(mask2, 0) - 1 + mask1.sum(0, /*keepdim=*/true);
  GateDecision d;
  d.num_experts = experts;
  d.l_aux = (gates.mean(0) * mask1.to(torch::kFloat32).mean(0)).mean() * static_cast<double>(experts * experts);
  d.exp_counts = (mask1 + mask2).sum(0).detach();
  int64_t capacity = 0;
  if (options.drop_tokens) {
    capacity = capacity_of(tokens, experts, options.capacity_factor * 2, options.min_capacity);
    mask1 = mask1 * (locations1 < capacity).to(mask1.scalar_type());
    mask2 = mask2 * (locations2 < capacity).to(mask2.scalar_type());
  } else {
    capacity = capacity_for_all(d.exp_counts, options);
  }
  auto gates1 = (gates * mask1.to(torch::kFloat32)).sum(1);
  auto gates2 = (gates * mask2.to(torch::kFloat32)).sum(1);
  const auto denominator = torch::clamp(gates1 + gates2, std::numeric_limits<float>::epsilon());
  d.capacity = capacity;
  d.indices = torch::stack({route_indices(mask1, indices1), route_indices(mask2, indices2)});
  d.locations = torch::stack({(locations1 * mask1).sum(1), (locations2 * mask2).sum(1)});
  d.gates = torch::stack({gates1 / denominator, gates2 / denominator});
  return d;
}

GateDecision topkgating(torch::Tensor logits, int64_t k, const GatingOptions& options) {
  check_logits(logits, "topkgating");
  logits = logits.to(torch::kFloat32);
  const int64_t tokens = logits.size(0), experts = logits.size(1);
  if (k < 1 || k > experts) throw EngineError(fmt::format("topkgating: k {} must be between 1 and the {} experts", k, experts));
  auto gates = torch::softmax(logits, 1);
  auto [top_gate, top_idx] = torch::topk(gates, k, 1);
  auto mask = torch::zeros_like(gates, torch::kBool).scatter_(1, top_idx, true);
  GateDecision d;
  d.num_experts = experts;
  d.exp_counts = mask.sum(0).detach();
  d.l_aux = (gates.mean(0) * mask.to(torch::kFloat32).mean(0)).mean() * static_cast<double>(experts * experts) /
            static_cast<double>(k);
  torch::Tensor locations;
  int64_t capacity = 0;
  if (options.drop_tokens) {
    capacity = capacity_of(tokens, experts, options.capacity_factor * static_cast<double>(k), options.min_capacity);
    if (options.drop_policy == "probs") {
      const auto masked_gates = torch::zeros_like(gates).scatter(1, top_idx, top_gate);
      const auto keep = std::get<1>(torch::topk(masked_gates, std::min(capacity, tokens), 0, /*largest=*/true, /*sorted=*/false));
      mask = mask & torch::zeros_like(gates, torch::kBool).scatter_(0, keep, true);
      locations = torch::cumsum(mask.to(torch::kInt64), 0) - 1;
    } else if (options.drop_policy == "position") {
      locations = torch::cumsum(mask.to(torch::kInt64), 0) - 1;
      mask = mask & (locations < capacity);
    } else {
      throw EngineError("topkgating: drop_policy must be \"probs\" or \"position\", got \"" + options.drop_policy + "\"");
    }
  } else {
    capacity = capacity_for_all(d.exp_counts, options);
    locations = torch::cumsum(mask.to(torch::kInt64), 0) - 1;
  }
  auto masked = gates * mask.to(torch::kFloat32);
  masked = masked / torch::clamp(masked.sum(-1, /*keepdim=*/true), std::numeric_limits<float>::epsilon());
  // One route per chosen expert, in top_idx's order (highest gate first).
  const auto kept = mask.gather(1, top_idx);
  d.capacity = capacity;
  d.indices = torch::where(kept, top_idx, torch::full_like(top_idx, -1)).t().contiguous();
  d.locations = (locations.gather(1, top_idx) * kept.to(torch::kInt64)).t().contiguous();
  d.gates = masked.gather(1, top_idx).t().contiguous();
  return d;
}

torch::Tensor combine_weights(const GateDecision& d) {
  const int64_t tokens = d.indices.size(1);
  auto out = torch::zeros({tokens, d.num_experts, d.capacity}, torch::kFloat32);
  for (int64_t r = 0; r < d.indices.size(0); ++r) {
    const auto kept = d.indices[r] >= 0;
    const auto token = torch::arange(tokens).masked_select(kept);
    out.index_put_({token, d.indices[r].masked_select(kept), d.locations[r].masked_select(kept)},
                   d.gates[r].masked_select(kept).to(torch::kFloat32), /*accumulate=*/true);
  }
  return out;
}

}  // namespace deepspeed::moe
