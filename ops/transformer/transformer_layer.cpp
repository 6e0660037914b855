#include <cmath>
#include <limits>
#include <string>

#include <deepspeed/errors.h>
#include <deepspeed/ops_config.h>
#include <deepspeed/transformer.h>

#include "transformer/primitives.h"
#include "transformer/transformer_function.h"

namespace deepspeed::ops {
namespace {

[[noreturn]] void config_error(const std::string& field, const std::string& expected, const std::string& got) {
  throw OpError("transformer op: TransformerConfig." + field + " must be " + expected + " (got " + got + ")");
}

[[noreturn]] void input_error(const std::string& what) { throw OpError("transformer op: forward(): " + what); }

std::string sizes_of(const torch::Tensor& t) {
  std::string out = "[";
  for (int64_t d = 0; d < t.dim(); ++d) out += (d ? ", " : "") + std::to_string(t.size(d));
  return out + "]";
}

// The mask as the kernels read it: 4-D, in the activations' dtype and device, keys contiguous.
torch::Tensor checked_mask(const torch::Tensor& mask, const torch::Tensor& hidden, int64_t heads) {
  if (!mask.defined()) return mask;
  const int64_t batch = hidden.size(0), seq = hidden.size(1);
  const int64_t want[4] = {batch, heads, seq, seq};
  bool fits = mask.dim() == 4 && mask.size(3) == seq;
  for (int64_t d = 0; fits && d < 3; ++d) fits = mask.size(d) == 1 || mask.size(d) == want[d];
  if (!fits) {
    input_error("attention_mask of shape " + sizes_of(mask) + " does not broadcast to [batch, heads, seq, seq] = [" +
                std::to_string(batch) + ", " + std::to_string(heads) + ", " + std::to_string(seq) + ", " +
                std::to_string(seq) + "] (BERT's mask is [batch, 1, 1, seq])");
  }
  if (!mask.is_floating_point()) {
    input_error("attention_mask must be additive (floating point: 0 keeps, a large negative value masks), got " +
                std::string(c10::toString(mask.scalar_type())));
  }
  auto m = mask.to(hidden.device(), hidden.scalar_type());
  return m.stride(3) == 1 ? m : m.contiguous();
}

}  // namespace

void TransformerConfig::validate() const {
  if (hidden_size <= 0) config_error("hidden_size", "> 0", std::to_string(hidden_size));
  if (heads <= 0) config_error("heads", "> 0", std::to_string(heads));
  if (hidden_size % heads != 0) {
    config_error("heads", "a divisor of hidden_size " + std::to_string(hidden_size), std::to_string(heads));
  }
  if (intermediate_size == 0 || intermediate_size < -1) {
    config_error("intermediate_size", "> 0, or -1 for 4 * hidden_size", std::to_string(intermediate_size));
  }
  if (!(attn_dropout_ratio >= 0.0f && attn_dropout_ratio < 1.0f)) {
    config_error("attn_dropout_ratio", "in [0, 1)", std::to_string(attn_dropout_ratio));
  }
  if (!(hidden_dropout_ratio >= 0.0f && hidden_dropout_ratio < 1.0f)) {
    config_error("hidden_dropout_ratio", "in [0, 1)", std::to_string(hidden_dropout_ratio));
  }
  if (batch_size == 0 || batch_size < -1) {
    config_error("batch_size", "> 0, or -1 for any", std::to_string(batch_size));
  }
  if (!(initializer_range > 0.0f)) config_error("initializer_range", "> 0", std::to_string(initializer_range));
  if (adjust_init_range && num_hidden_layers <= 0) {
    config_error("num_hidden_layers", "> 0 with adjust_init_range", std::to_string(num_hidden_layers));
  }
  if (!(layer_norm_eps > 0.0f)) config_error("layer_norm_eps", "> 0", std::to_string(layer_norm_eps));
  if (local_rank < -1) config_error("local_rank", ">= 0, or -1 for the current device", std::to_string(local_rank));
  if (seed < -1) config_error("seed", ">= 0, or -1 for a seed drawn from torch", std::to_string(seed));
}

TransformerLayerImpl::TransformerLayerImpl(const TransformerConfig& config) : config_(config) {
  config_.validate();
  const int64_t h = config_.hidden_size, i = config_.intermediate();
  auto options = torch::TensorOptions().dtype(config_.fp16 ? torch::kHalf : torch::kFloat);
  if (config_.local_rank >= 0) {
    if (!torch::cuda::is_available() || config_.local_rank >= static_cast<int64_t>(torch::cuda::device_count())) {
      config_error("local_rank", "the index of a visible CUDA device", std::to_string(config_.local_rank));
    }
    options = options.device(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(config_.local_rank)));
  }
  attn_qkvw = register_parameter("attn_qkvw", torch::empty({3 * h, h}, options));
  attn_qkvb = register_parameter("attn_qkvb", torch::empty({3 * h}, options));
  attn_ow = register_parameter("attn_ow", torch::empty({h, h}, options));
  attn_ob = register_parameter("attn_ob", torch::empty({h}, options));
  attn_nw = register_parameter("attn_nw", torch::empty({h}, options));
  attn_nb = register_parameter("attn_nb", torch::empty({h}, options));
  inter_w = register_parameter("inter_w", torch::empty({i, h}, options));
  inter_b = register_parameter("inter_b", torch::empty({i}, options));
  output_w = register_parameter("output_w", torch::empty({h, i}, options));
  output_b = register_parameter("output_b", torch::empty({h}, options));
  norm_w = register_parameter("norm_w", torch::empty({h}, options));
  norm_b = register_parameter("norm_b", torch::empty({h}, options));
  reset_parameters();
  seed_ = config_.seed >= 0
              ? static_cast<uint64_t>(config_.seed)
              : static_cast<uint64_t>(
                    torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>());
  train(config_.training);
}

void TransformerLayerImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double range = config_.initializer_range;
  const double output_std =
      config_.adjust_init_range ? range / std::sqrt(2.0 * static_cast<double>(config_.num_hidden_layers)) : range;
  attn_qkvw.normal_(0.0, range);
  attn_qkvb.zero_();
  attn_ow.normal_(0.0, output_std);
  attn_ob.zero_();
  attn_nw.fill_(1.0);
  attn_nb.zero_();
  inter_w.normal_(0.0, range);
  inter_b.zero_();
  output_w.normal_(0.0, output_std);
  output_b.zero_();
  norm_w.fill_(1.0);
  norm_b.zero_();
}

torch::Tensor TransformerLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  const int64_t h = config_.hidden_size;
  if (!hidden.defined() || hidden.dim() != 3 || hidden.size(2) != h) {
    input_error("hidden must be [batch, seq, " + std::to_string(h) + "], got " +
                (hidden.defined() ? sizes_of(hidden) : std::string("an undefined tensor")));
  }
  if (hidden.scalar_type() != attn_qkvw.scalar_type() || hidden.device() != attn_qkvw.device()) {
    input_error(std::string("hidden is ") + c10::toString(hidden.scalar_type()) + " on " + hidden.device().str() +
                ", the parameters " + c10::toString(attn_qkvw.scalar_type()) + " on " + attn_qkvw.device().str() +
                " (move one with ->to())");
  }
  if (config_.batch_size > 0 && hidden.size(0) > config_.batch_size) {
    input_error("a batch of " + std::to_string(hidden.size(0)) + " exceeds TransformerConfig.batch_size " +
                std::to_string(config_.batch_size));
  }
  const torch::Tensor mask = checked_mask(attention_mask, hidden, config_.heads);

  transformer_detail::LayerSpec spec;
  spec.heads = config_.heads;
  spec.eps = config_.layer_norm_eps;
  spec.attn_dropout = is_training() ? config_.attn_dropout_ratio : 0.0f;
  spec.hidden_dropout = is_training() ? config_.hidden_dropout_ratio : 0.0f;
  spec.pre_layer_norm = config_.pre_layer_norm;
  spec.normalize_invertible = config_.normalize_invertible;
  spec.gelu_checkpoint = config_.gelu_checkpoint;
  spec.attn_dropout_checkpoint = config_.attn_dropout_checkpoint;
  spec.stochastic = config_.stochastic_mode;
  spec.use_kernels = hidden.is_cuda() && transformer_kernels_built() &&
                     transformer_detail::cuda_kernels_take(h, config_.intermediate(), hidden.size(1));
  spec.seed = seed_;
  spec.offset = 3 * calls_;
  if (is_training()) ++calls_;

  transformer_detail::ForwardStats stats;
  auto out = transformer_detail::transformer_apply(
      spec, hidden.contiguous(), mask,
      {attn_qkvw, attn_qkvb, attn_ow, attn_ob, attn_nw, attn_nb, inter_w, inter_b, output_w, output_b, norm_w, norm_b},
      &stats);
  saved_activation_bytes_ = stats.saved_activation_bytes;
  last_forward_used_kernels_ = spec.use_kernels;
  return out;
}

std::tuple<torch::Tensor> TransformerLayerImpl::forward_tuple(const torch::Tensor& hidden,
                                                              const torch::Tensor& attention_mask) {
  return {forward(hidden, attention_mask)};
}

bool transformer_kernels_built() { return DEEPSPEED_OP_TRANSFORMER_BUILT != 0; }
bool stochastic_transformer_kernels_built() { return DEEPSPEED_OP_STOCHASTIC_TRANSFORMER_BUILT != 0; }

}  // namespace deepspeed::ops
