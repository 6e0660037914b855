// The choice of each sequence's next token from its logits: greedy (argmax) or sampled with
// temperature, top-k and top-p (nucleus) as Hugging Face's generate applies them, from a
// seeded CPU generator so that a seed gives the same tokens on any device.
#pragma once

#include <torch/torch.h>

#include <deepspeed/inference.h>

namespace deepspeed::inference {

class TokenSampler {
 public:
  explicit TokenSampler(const GenerationOptions& options);
  // logits [batch, vocab] -> the next tokens [batch] (int64, on the CPU). suppress_stop: the
  // stop tokens may not be chosen (min_new_tokens not reached yet).
  torch::Tensor next(const torch::Tensor& logits, bool suppress_stop);

 private:
  GenerationOptions options_;
  torch::Generator generator_;
  torch::Tensor stop_tokens_;
};

}  // namespace deepspeed::inference
