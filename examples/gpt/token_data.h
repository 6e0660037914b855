// Where the GPT example's tokens come from: random tokens (the benchmark default: the data
// does not change the speed), or a file of uint16 token ids as nanoGPT and llm.c write them
// (a raw array, or llm.c's 1024-byte header with magic 20240520 followed by the tokens).
// Windows of seq_len + 1 tokens, drawn from the seed (gpt_train gives every rank one seed and
// lets each keep its share of the global batch; the pipeline seeds by data-parallel rank).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace gpt {

class TokenSource {
 public:
  // `path` empty: random tokens below vocab_size. Throws std::runtime_error naming the file
  // when it cannot be read, holds fewer than seq_len + 1 tokens or a token >= vocab_size.
  TokenSource(const std::string& path, int64_t vocab_size, int64_t seq_len, uint64_t seed);
  // A batch of inputs and targets (targets = inputs shifted by one), [batch, seq_len], on `device`.
  std::pair<torch::Tensor, torch::Tensor> next(int64_t batch, const torch::Device& device);

 private:
  int64_t vocab_size_;
  int64_t seq_len_;
  std::vector<uint16_t> tokens_;  // empty: random
  torch::Generator generator_;
};

}  // namespace gpt
