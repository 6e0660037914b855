// The base configuration (DeepSpeed's SparsityConfig), the dense one, and the choice of a
// configuration from a "sparse_attention" config section.
#include <deepspeed/sparsity_config.h>

#include "sparse_attention/layout/layout_rules.h"

namespace deepspeed::ops::sparse_attention {

using layout_detail::check_at_least;
using layout_detail::fail;

SparsityConfig::SparsityConfig(const SparsityOptions& options)
    : num_heads_(options.num_heads), block_(options.block), different_layout_per_head_(options.different_layout_per_head) {
  check_at_least(num_heads_, 1, "num_heads", "SparsityConfig");
  check_at_least(block_, 1, "block", "SparsityConfig");
}

SparsityLayout SparsityConfig::setup_layout(int64_t seq_len) const {
  if (seq_len < 0 || seq_len % block_ != 0) {
    fail("SparsityConfig", "Sequence Length, " + std::to_string(seq_len) + ", needs to be dividable by Block size " +
                               std::to_string(block_) + "!");
  }
  return SparsityLayout(num_heads_, seq_len / block_);
}

void SparsityConfig::propagate_first_head_layout(SparsityLayout& layout) const {
  if (different_layout_per_head_) return;
  for (int64_t h = 1; h < layout.heads(); ++h) {
    for (int64_t r = 0; r < layout.blocks(); ++r) {
      for (int64_t c = 0; c < layout.blocks(); ++c) layout.set(h, r, c, layout.at(0, r, c));
    }
  }
}

SparsityLayout DenseSparsityConfig::make_layout(int64_t seq_len) const {
  SparsityLayout layout = setup_layout(seq_len);
  for (int64_t h = 0; h < layout.heads(); ++h) layout_detail::fill(layout, h, 0, layout_detail::kEnd, 0, layout_detail::kEnd);
  return layout;
}

namespace {

// A configuration's options with the fields every configuration has filled in.
template <typename Options>
Options with_base(const SparseAttentionConfig& s, int64_t num_heads) {
  Options o;
  static_cast<SparsityOptions&>(o) =
      SparsityOptions{.num_heads = num_heads, .block = s.block, .different_layout_per_head = s.different_layout_per_head};
  return o;
}

}  // namespace

std::shared_ptr<const SparsityConfig> make_sparsity_config(const SparseAttentionConfig& s, int64_t num_heads) {
  const auto base = with_base<SparsityOptions>(s, num_heads);
  if (s.mode == "dense") return std::make_shared<DenseSparsityConfig>(base);
  if (s.mode == "fixed") {
    auto o = with_base<FixedOptions>(s, num_heads);
    o.num_local_blocks = s.num_local_blocks;
    o.num_global_blocks = s.num_global_blocks;
    o.attention = s.attention;
    o.horizontal_global_attention = s.horizontal_global_attention;
    o.num_different_global_patterns = s.num_different_global_patterns;
    return std::make_shared<FixedSparsityConfig>(o);
  }
  if (s.mode == "variable") {
    auto o = with_base<VariableOptions>(s, num_heads);
    o.num_random_blocks = s.num_random_blocks;
    o.local_window_blocks = s.local_window_blocks;
    o.global_block_indices = s.global_block_indices;
    o.global_block_end_indices = s.global_block_end_indices;
    o.attention = s.attention;
    o.horizontal_global_attention = s.horizontal_global_attention;
    o.seed = s.seed;
    return std::make_shared<VariableSparsityConfig>(o);
  }
  if (s.mode == "bigbird") {
    auto o = with_base<BigBirdOptions>(s, num_heads);
    o.num_random_blocks = s.num_random_blocks;
    o.num_sliding_window_blocks = s.num_sliding_window_blocks;
    o.num_global_blocks = s.num_global_blocks;
    o.attention = s.attention;
    o.seed = s.seed;
    return std::make_shared<BigBirdSparsityConfig>(o);
  }
  if (s.mode == "bslongformer") {
    auto o = with_base<BSLongformerOptions>(s, num_heads);
    o.num_sliding_window_blocks = s.num_sliding_window_blocks;
    o.global_block_indices = s.global_block_indices;
    o.global_block_end_indices = s.global_block_end_indices;
    o.attention = s.attention;
    return std::make_shared<BSLongformerSparsityConfig>(o);
  }
  if (s.mode == "local_sliding_window") {
    auto o = with_base<LocalSlidingWindowOptions>(s, num_heads);
    o.num_sliding_window_blocks = s.num_sliding_window_blocks;
    o.attention = s.attention;
    return std::make_shared<LocalSlidingWindowSparsityConfig>(o);
  }
  fail("sparse_attention", "Given sparsity mode, " + s.mode + ", has not been implemented yet!");
}

}  // namespace deepspeed::ops::sparse_attention
