// DeepSpeed's BSLongformerSparsityConfig: a sliding window and global blocks or ranges.
#include <algorithm>

#include <deepspeed/sparsity_config.h>

#include "sparse_attention/layout/layout_rules.h"

namespace deepspeed::ops::sparse_attention {

using namespace layout_detail;

namespace {
const std::string kLongformer = "BSLongformerSparsityConfig";
}  // namespace

BSLongformerSparsityConfig::BSLongformerSparsityConfig(const BSLongformerOptions& options)
    : SparsityConfig(options), o_(options) {
  check_at_least(o_.num_sliding_window_blocks, 0, "num_sliding_window_blocks", kLongformer);
  check_global_blocks(o_.global_block_indices, o_.global_block_end_indices, kLongformer);
  check_attention(o_.attention, kLongformer);
}

SparsityLayout BSLongformerSparsityConfig::make_layout(int64_t seq_len) const {
  SparsityLayout layout = setup_layout(seq_len);
  const int64_t n = layout.blocks();
  for (int64_t h = 0; h < num_layout_heads(); ++h) {
    set_sliding_window(layout, h, o_.num_sliding_window_blocks, false, kLongformer);
    for (size_t g = 0; g < o_.global_block_indices.size(); ++g) {
      const int64_t first = o_.global_block_indices[g];
      if (first >= n) continue;
      const int64_t end = o_.global_block_end_indices ? std::min((*o_.global_block_end_indices)[g], n) : first + 1;
      fill(layout, h, first, end, 0, kEnd);
      fill(layout, h, 0, kEnd, first, end);
    }
    if (o_.attention == "unidirectional") keep_lower_triangle(layout);
  }
  propagate_first_head_layout(layout);
  return layout;
}

}  // namespace deepspeed::ops::sparse_attention
