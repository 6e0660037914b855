#include "inference/sampling.h"

#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <deepspeed/errors.h>

namespace deepspeed::inference {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

void check(const GenerationOptions& o) {
  if (o.max_new_tokens < 1) throw EngineError(fmt::format("generate: max_new_tokens {} must be positive", o.max_new_tokens));
  if (o.min_new_tokens < 0 || o.min_new_tokens > o.max_new_tokens) {
    throw EngineError(fmt::format("generate: min_new_tokens {} must be in [0, max_new_tokens {}]", o.min_new_tokens,
                                  o.max_new_tokens));
  }
  if (!(o.temperature > 0)) throw EngineError(fmt::format("generate: temperature {} must be positive", o.temperature));
  if (o.top_k < 0) throw EngineError(fmt::format("generate: top_k {} must be 0 (off) or positive", o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) throw EngineError(fmt::format("generate: top_p {} must be in (0, 1]", o.top_p));
}

}  // namespace

TokenSampler::TokenSampler(const GenerationOptions& options)
    : options_(options), generator_(at::make_generator<at::CPUGeneratorImpl>(options.seed)) {
  check(options_);
  if (!options_.stop_tokens.empty()) stop_tokens_ = torch::tensor(options_.stop_tokens, torch::kLong);
}

torch::Tensor TokenSampler::next(const torch::Tensor& logits, bool suppress_stop) {
  auto scores = logits.to(torch::kFloat);
  if (suppress_stop && stop_tokens_.defined()) {
    scores = scores.index_fill(1, stop_tokens_.to(scores.device()), kMinusInf);
  }
  if (!options_.do_sample) return scores.argmax(-1).to(torch::kCPU);
  // Sampling on the CPU: the generator (and so the tokens) do not depend on the device.
  scores = scores.to(torch::kCPU) / options_.temperature;
  if (options_.top_k > 0 && options_.top_k < scores.size(-1)) {
    const auto kth = std::get<0>(scores.topk(options_.top_k, -1)).narrow(-1, options_.top_k - 1, 1);
    scores = scores.masked_fill(scores < kth, kMinusInf);
  }
  if (options_.top_p < 1.0) {
    // Keep the most likely tokens until their probability reaches top_p (the first always).
    auto [sorted, order] = scores.sort(-1, /*descending=*/true);
    const auto probs = sorted.softmax(-1);
    const auto before = probs.cumsum(-1) - probs;
    sorted = sorted.masked_fill(before > options_.top_p, kMinusInf);
    scores = torch::full_like(scores, kMinusInf).scatter(-1, order, sorted);
  }
  return torch::multinomial(scores.softmax(-1), 1, /*replacement=*/false, generator_).squeeze(-1);
}

}  // namespace deepspeed::inference
