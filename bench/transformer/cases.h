// The layers the transformer benchmark times, the same as bench/peers/transformer_peer.py's:
// BERT-large (post-LN, padding mask) at two sequence lengths and a GPT-2 XL block (pre-LN,
// causal mask), dropout 0.1 on the attention probabilities and on both residual branches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct BenchCase {
  std::string name;
  int64_t batch, seq, hidden, heads, intermediate;
  bool pre_layer_norm;
  bool causal;  // else a padding mask [batch, 1, 1, seq]
};

inline std::vector<BenchCase> bench_cases() {
  return {{"bert-large-s128-b64", 64, 128, 1024, 16, 4096, false, false},
          {"bert-large-s512-b16", 16, 512, 1024, 16, 4096, false, false},
          {"gpt2-xl-block-s1024-b8", 8, 1024, 1600, 25, 6400, true, true}};
}
