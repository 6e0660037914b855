// The decoder's passes. Each block: qkv = linear(h) (bias in the GEMM), attention over the KV
// cache, the output projection (summed over the tensor-parallel group) added to the residual
// stream with its bias and the next norm in one call, the MLP's input GEMM, bias + activation,
// its output GEMM (summed), and the residual add fused with the next block's first norm (or
// the final norm). The GEMMs are at::linear (cuBLAS on CUDA); the rest is the
// transformer_inference op.
#include "inference/decoder.h"

#include <fmt/format.h>

#include <deepspeed/errors.h>

#if DS_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>
#endif

namespace deepspeed::inference {

namespace ti = ops::transformer_inference;

struct Decoder::Graph {
#if DS_HAVE_CUDA
  at::cuda::CUDAGraph graph;
#endif
  int64_t batch = 0;
  bool captured = false;
  torch::Tensor tokens;  // the graph's input [batch]
  torch::Tensor logits;  // its output [batch, vocab]
};

Decoder::Decoder(DecoderShape shape, DecoderWeights weights, std::shared_ptr<comm::ProcessGroup> tp_group, bool fused,
                 bool cuda_graphs, int64_t max_tokens, torch::Device device)
    : shape_(std::move(shape)),
      w_(std::move(weights)),
      tp_group_(std::move(tp_group)),
      fused_(fused),
      cuda_graphs_(cuda_graphs),
      max_tokens_(max_tokens),
      device_(device) {
  length_ = torch::zeros({1}, torch::TensorOptions().dtype(torch::kLong).device(device_));
}

Decoder::~Decoder() = default;

void Decoder::start(const torch::Tensor& pads) {
  const int64_t batch = pads.size(0);
  if (!pads_.defined() || pads_.size(0) != batch) {
    // A new batch size: a new cache (a graph captured for the old one would write the old).
    graph_.reset();
    cache_k_.clear();
    cache_v_.clear();
    const auto options = w_.embedding.options();
    for (int64_t l = 0; l < shape_.layers; ++l) {
      cache_k_.push_back(torch::zeros({batch, shape_.heads, max_tokens_, shape_.head_dim}, options));
      cache_v_.push_back(torch::zeros({batch, shape_.heads, max_tokens_, shape_.head_dim}, options));
    }
    pads_ = torch::zeros({batch}, torch::TensorOptions().dtype(torch::kLong).device(device_));
  }
  pads_.copy_(pads);  // in place: a captured graph reads this tensor
  length_.zero_();
  length_host_ = 0;
}

void Decoder::all_reduce(torch::Tensor& t) {
  if (tp_group_ && tp_group_->size() > 1) tp_group_->all_reduce(t);
}

torch::Tensor Decoder::blocks(torch::Tensor x,
                              const std::function<torch::Tensor(int64_t, const torch::Tensor&)>& attention) {
  const auto& first = w_.blocks.front();
  auto h = ti::norm(x, first.norm_1_w, first.norm_1_b, shape_.eps, shape_.norm);
  for (int64_t l = 0; l < shape_.layers; ++l) {
    const auto& b = w_.blocks[static_cast<size_t>(l)];
    const auto qkv = torch::linear(h, b.qkv_w, b.qkv_b);
    auto o = torch::linear(attention(l, qkv), b.out_w);
    all_reduce(o);
    h = ti::add_residual_norm(x, o, b.out_b, b.norm_2_w, b.norm_2_b, shape_.eps, shape_.norm, fused_);
    auto m = torch::linear(ti::bias_activation(torch::linear(h, b.mlp_in_w), b.mlp_in_b, shape_.activation, fused_),
                           b.mlp_out_w);
    all_reduce(m);
    const bool last = l + 1 == shape_.layers;
    const auto& next_w = last ? w_.final_norm_w : w_.blocks[static_cast<size_t>(l + 1)].norm_1_w;
    const auto& next_b = last ? w_.final_norm_b : w_.blocks[static_cast<size_t>(l + 1)].norm_1_b;
    h = ti::add_residual_norm(x, m, b.mlp_out_b, next_w, next_b, shape_.eps, shape_.norm, fused_);
  }
  return h;
}

torch::Tensor Decoder::logits(const torch::Tensor& hidden) { return torch::linear(hidden, w_.lm_head).to(torch::kFloat); }

torch::Tensor Decoder::prefill(const torch::Tensor& tokens, bool every_position) {
  const int64_t batch = tokens.size(0), t = tokens.size(1);
  if (!pads_.defined() || pads_.size(0) != batch) throw EngineError("inference decoder: prefill before start()");
  if (t > max_tokens_) {
    throw EngineError(fmt::format("inference: {} tokens do not fit the KV cache of max_out_tokens {}", t, max_tokens_));
  }
  if (shape_.max_positions > 0 && t > shape_.max_positions) {
    throw EngineError(fmt::format("inference: {} tokens are more than the model's {} positions", t, shape_.max_positions));
  }
  torch::NoGradGuard no_grad;
  const auto ids = tokens.to(device_, torch::kLong);
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device_);
  const auto positions = (torch::arange(t, long_opts).unsqueeze(0) - pads_.unsqueeze(1)).clamp_min(0);
  auto x = torch::embedding(w_.embedding, ids);
  if (w_.position_embedding.defined()) x = x + torch::embedding(w_.position_embedding, positions);
  auto h = blocks(x, [&](int64_t l, const torch::Tensor& qkv) {
    auto& ck = cache_k_[static_cast<size_t>(l)];
    auto& cv = cache_v_[static_cast<size_t>(l)];
    const auto q = ti::prefill_qkv(qkv, positions, ck, cv, 0, shape_.rope_theta);
    return ti::prefill_attention(q, ck, cv, pads_, 0, fused_);
  });
  length_.fill_(t);
  length_host_ = t;
  return every_position ? logits(h) : logits(h.select(1, t - 1));
}

torch::Tensor Decoder::decode_step(const torch::Tensor& tokens) {
  auto x = torch::embedding(w_.embedding, tokens);
  if (w_.position_embedding.defined()) x = x + torch::embedding(w_.position_embedding, length_ - pads_);
  auto h = blocks(x, [&](int64_t l, const torch::Tensor& qkv) {
    auto& ck = cache_k_[static_cast<size_t>(l)];
    auto& cv = cache_v_[static_cast<size_t>(l)];
    const auto q = ti::decode_qkv(qkv, length_, pads_, ck, cv, shape_.rope_theta, fused_);
    return ti::decode_attention(q, ck, cv, pads_, length_, fused_);
  });
  length_.add_(1);
  return logits(h);
}

torch::Tensor Decoder::decode(const torch::Tensor& tokens) {
  const int64_t batch = tokens.size(0);
  if (!pads_.defined() || pads_.size(0) != batch) throw EngineError("inference decoder: decode before start()");
  if (length_host_ >= max_tokens_) {
    throw EngineError(fmt::format("inference: the KV cache of max_out_tokens {} is full", max_tokens_));
  }
  torch::NoGradGuard no_grad;
#if DS_HAVE_CUDA
  if (cuda_graphs_) {
    if (!graph_ || graph_->batch != batch) {
      graph_ = std::make_unique<Graph>();
      graph_->batch = batch;
      graph_->tokens = torch::zeros({batch}, torch::TensorOptions().dtype(torch::kLong).device(device_));
    }
    graph_->tokens.copy_(tokens);
    ++length_host_;
    if (graph_->captured) {
      graph_->graph.replay();
      return graph_->logits;
    }
    // The first step of this batch size runs eagerly, then one step is captured (capture
    // records without running, so the cache and length_ stay where the next replay needs
    // them). Both on a side stream: a capture may not use the default stream.
    torch::cuda::synchronize();
    torch::Tensor out;
    {
      const c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromPool());
      out = decode_step(graph_->tokens).clone();
      graph_->graph.capture_begin();
      graph_->logits = decode_step(graph_->tokens);
      graph_->graph.capture_end();
    }
    torch::cuda::synchronize();
    graph_->captured = true;
    return out;
  }
#endif
  ++length_host_;
  return decode_step(tokens.to(device_, torch::kLong));
}

}  // namespace deepspeed::inference
