// DeepSpeed's VariableSparsityConfig: random blocks, local windows of given sizes, global
// blocks or ranges.
#include <algorithm>

#include <deepspeed/sparsity_config.h>

#include "sparse_attention/layout/layout_rules.h"
#include "sparse_attention/layout/python_random.h"

namespace deepspeed::ops::sparse_attention {

using namespace layout_detail;

namespace {

const std::string kVariable = "VariableSparsityConfig";

// Rows [first, end) attend to [first, end), or to the blocks up to themselves when causal.
void set_window(SparsityLayout& layout, int64_t h, int64_t first, int64_t end, bool causal) {
  for (int64_t row = first; row < end; ++row) fill(layout, h, row, row + 1, first, causal ? row + 1 : end);
}

}  // namespace

VariableSparsityConfig::VariableSparsityConfig(const VariableOptions& options) : SparsityConfig(options), o_(options) {
  check_at_least(o_.num_random_blocks, 0, "num_random_blocks", kVariable);
  if (o_.local_window_blocks.empty()) fail(kVariable, "local_window_blocks needs at least one window size");
  for (int64_t w : o_.local_window_blocks) check_at_least(w, 1, "each of local_window_blocks", kVariable);
  check_global_blocks(o_.global_block_indices, o_.global_block_end_indices, kVariable);
  check_attention(o_.attention, kVariable);
  if (o_.attention != "bidirectional" && o_.horizontal_global_attention) {
    fail(kVariable, "only \"bi-directional\" attentions can support horizontal global attention!");
  }
}

SparsityLayout VariableSparsityConfig::make_layout(int64_t seq_len) const {
  SparsityLayout layout = setup_layout(seq_len);
  const int64_t n = layout.blocks();
  const bool causal = o_.attention == "unidirectional";
  PythonRandom random(o_.seed);
  for (int64_t h = 0; h < num_layout_heads(); ++h) {
    // Random blocks: drawn over the whole row whatever the attention (as DeepSpeed does).
    set_random_blocks(layout, h, o_.num_random_blocks, false, random, kVariable);
    // Local windows of the given sizes, then windows of the last size up to the end.
    int64_t start = 0;
    for (int64_t size : o_.local_window_blocks) {
      set_window(layout, h, start, std::min(start + size, n), causal);
      start += size;
    }
    const int64_t last = o_.local_window_blocks.back();
    for (int64_t i = start; i < n; i += last) set_window(layout, h, i, std::min(i + last, n), causal);
    // Global blocks: columns for every row (from the block itself on when causal), and rows
    // with horizontal_global_attention.
    for (size_t g = 0; g < o_.global_block_indices.size(); ++g) {
      const int64_t first = o_.global_block_indices[g];
      if (first >= n) continue;
      const int64_t end = o_.global_block_end_indices ? std::min((*o_.global_block_end_indices)[g], n) : first + 1;
      if (o_.horizontal_global_attention) fill(layout, h, first, end, 0, kEnd);
      fill(layout, h, causal ? first : 0, kEnd, first, end);
    }
  }
  propagate_first_head_layout(layout);
  return layout;
}

}  // namespace deepspeed::ops::sparse_attention
