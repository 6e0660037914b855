// SparseAttentionUtils: padding to the block size and back, and the switch of a model's
// self-attention modules to sparse attention.
#include <deepspeed/errors.h>
#include <deepspeed/sparse_attention.h>

namespace deepspeed::ops::sparse_attention {

int64_t SparseAttentionUtils::replace_model_self_attention_with_sparse_self_attention(
    torch::nn::Module& model, int64_t max_position, const std::shared_ptr<const SparsityConfig>& sparsity_config) {
  if (!sparsity_config) throw OpError("SparseAttentionUtils: no sparsity config");
  int64_t replaced = 0;
  auto visit = [&](torch::nn::Module& m, const std::string& name) {
    auto* attention = dynamic_cast<ReplaceableSelfAttention*>(&m);
    if (attention == nullptr) return;
    if (attention->num_attention_heads() != sparsity_config->num_heads()) {
      throw OpError("SparseAttentionUtils: " + (name.empty() ? m.name() : name) + " has " +
                    std::to_string(attention->num_attention_heads()) + " attention heads, the sparsity config " +
                    std::to_string(sparsity_config->num_heads()));
    }
    attention->use_sparse_self_attention(sparsity_config, max_position);
    ++replaced;
  };
  visit(model, "");
  for (const auto& item : model.named_modules("", /*include_self=*/false)) visit(*item.value(), item.key());
  return replaced;
}

SparseAttentionUtils::PaddedInputs SparseAttentionUtils::pad_to_block_size(
    int64_t block_size, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
    const torch::Tensor& token_type_ids, const torch::Tensor& position_ids, const torch::Tensor& inputs_embeds,
    int64_t pad_token_id, const std::function<torch::Tensor(const torch::Tensor&)>& model_embeddings) {
  if (block_size < 1) throw OpError("SparseAttentionUtils: block_size must be at least 1");
  const torch::Tensor& shape_source = input_ids.defined() ? input_ids : inputs_embeds;
  if (!shape_source.defined()) throw OpError("SparseAttentionUtils: give input_ids or inputs_embeds");
  const int64_t batch = shape_source.size(0), seq = shape_source.size(1);
  PaddedInputs p{(block_size - seq % block_size) % block_size, input_ids, attention_mask, token_type_ids,
                 position_ids, inputs_embeds};
  if (p.pad_len == 0) return p;
  // Pads the last dimension with `value` (DeepSpeed: F.pad(x, (0, pad_len), value=...)).
  auto pad_last = [&](const torch::Tensor& t, double value) {
    if (!t.defined()) return t;
    auto sizes = t.sizes().vec();
    sizes.back() = p.pad_len;
    return torch::cat({t, torch::full(sizes, value, t.options())}, -1);
  };
  if (inputs_embeds.defined()) {
    if (!model_embeddings) throw OpError("SparseAttentionUtils: padding inputs_embeds needs model_embeddings");
    const auto pad_ids = torch::full({batch, p.pad_len}, pad_token_id, inputs_embeds.options().dtype(torch::kLong));
    p.inputs_embeds = torch::cat({inputs_embeds, model_embeddings(pad_ids)}, -2);
  }
  p.input_ids = pad_last(input_ids, static_cast<double>(pad_token_id));
  p.position_ids = pad_last(position_ids, static_cast<double>(pad_token_id));
  p.attention_mask = pad_last(attention_mask, 0.0);
  p.token_type_ids = pad_last(token_type_ids, 0.0);
  return p;
}

torch::Tensor SparseAttentionUtils::unpad_sequence_output(int64_t pad_len, const torch::Tensor& sequence_output) {
  if (pad_len <= 0) return sequence_output;
  return sequence_output.slice(1, 0, sequence_output.size(1) - pad_len);
}

}  // namespace deepspeed::ops::sparse_attention
