#include "token_data.h"

#include <fstream>
#include <stdexcept>

namespace gpt {

TokenSource::TokenSource(const std::string& path, int64_t vocab_size, int64_t seq_len, uint64_t seed)
    : vocab_size_(vocab_size), seq_len_(seq_len), generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  if (path.empty()) return;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error(path + ": cannot open the token file");
  const auto bytes = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  int64_t offset = 0;
  int32_t header[256] = {};
  if (bytes >= 1024 && in.read(reinterpret_cast<char*>(header), sizeof header) && header[0] == 20240520) {
    offset = 1024;  // llm.c: magic, version, token count, then the tokens
    if (1024 + 2 * static_cast<int64_t>(header[2]) > bytes) {
      throw std::runtime_error(path + ": the llm.c header promises " + std::to_string(header[2]) +
                               " tokens but the file is shorter (truncated?)");
    }
  }
  if ((bytes - offset) % 2 != 0) {
    throw std::runtime_error(path + ": " + std::to_string(bytes - offset) +
                             " bytes of tokens is not a whole number of uint16 tokens");
  }
  tokens_.resize(static_cast<size_t>((bytes - offset) / 2));
  in.clear();
  in.seekg(offset);
  in.read(reinterpret_cast<char*>(tokens_.data()), static_cast<std::streamsize>(tokens_.size() * 2));
  if (!in) throw std::runtime_error(path + ": read failed");
  if (static_cast<int64_t>(tokens_.size()) < seq_len + 1) {
    throw std::runtime_error(path + ": " + std::to_string(tokens_.size()) + " tokens, fewer than seq_len + 1 = " +
                             std::to_string(seq_len + 1));
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i] >= vocab_size) {
      throw std::runtime_error(path + ": token " + std::to_string(i) + " is " + std::to_string(tokens_[i]) +
                               ", not below the vocabulary size " + std::to_string(vocab_size));
    }
  }
}

std::pair<torch::Tensor, torch::Tensor> TokenSource::next(int64_t batch, const torch::Device& device) {
  torch::Tensor window;
  if (tokens_.empty()) {
    window = torch::randint(vocab_size_, {batch, seq_len_ + 1}, generator_, torch::kLong);
  } else {
    const int64_t starts = static_cast<int64_t>(tokens_.size()) - seq_len_;
    auto begin = torch::randint(starts, {batch}, generator_, torch::kLong);
    window = torch::empty({batch, seq_len_ + 1}, torch::kLong);
    auto* out = window.data_ptr<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t s = begin[b].item<int64_t>();
      for (int64_t i = 0; i <= seq_len_; ++i) out[b * (seq_len_ + 1) + i] = tokens_[static_cast<size_t>(s + i)];
    }
  }
  if (device.is_cuda()) window = window.pin_memory().to(device, /*non_blocking=*/true);
  return {window.narrow(1, 0, seq_len_), window.narrow(1, 1, seq_len_)};
}

}  // namespace gpt
