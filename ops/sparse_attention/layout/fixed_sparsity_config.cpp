// Sparse Transformers' "fixed" layout as DeepSpeed builds it (FixedSparsityConfig).
#include <algorithm>

#include <deepspeed/sparsity_config.h>

#include "sparse_attention/layout/layout_rules.h"

namespace deepspeed::ops::sparse_attention {

using namespace layout_detail;

namespace {
const std::string kFixed = "FixedSparsityConfig";
}  // namespace

FixedSparsityConfig::FixedSparsityConfig(const FixedOptions& options) : SparsityConfig(options), o_(options) {
  check_at_least(o_.num_local_blocks, 1, "num_local_blocks", kFixed);
  check_at_least(o_.num_global_blocks, 1, "num_global_blocks", kFixed);
  check_at_least(o_.num_different_global_patterns, 1, "num_different_global_patterns", kFixed);
  if (o_.num_local_blocks % o_.num_global_blocks != 0) {
    fail(kFixed, "Number of blocks in a local window, " + std::to_string(o_.num_local_blocks) +
                     ", must be dividable by number of global blocks, " + std::to_string(o_.num_global_blocks) + "!");
  }
  check_attention(o_.attention, kFixed);
  if (o_.attention != "bidirectional" && o_.horizontal_global_attention) {
    fail(kFixed, "only \"bi-directional\" attentions can support horizontal global attention!");
  }
  if (o_.num_different_global_patterns > 1 && !o_.different_layout_per_head) {
    fail(kFixed,
         "Number of different layouts cannot be more than one when you have set a single layout for all heads! Set "
         "different_layout_per_head to True.");
  }
  const int64_t patterns = o_.num_local_blocks / o_.num_global_blocks;
  if (o_.num_different_global_patterns > patterns) {
    fail(kFixed, "Number of layout versions (num_different_global_patterns), " +
                     std::to_string(o_.num_different_global_patterns) +
                     ", cannot be larger than number of local window blocks divided by number of global blocks, " +
                     std::to_string(o_.num_local_blocks) + " / " + std::to_string(o_.num_global_blocks) + " = " +
                     std::to_string(patterns) + "!");
  }
}

void FixedSparsityConfig::set_local_layout(int64_t h, SparsityLayout& layout) const {
  const int64_t n = layout.blocks();
  const bool causal = o_.attention == "unidirectional";
  for (int64_t i = 0; i < n; i += o_.num_local_blocks) {
    const int64_t end = std::min(i + o_.num_local_blocks, n);
    for (int64_t row = i; row < end; ++row) fill(layout, h, row, row + 1, i, causal ? row + 1 : end);
  }
}

void FixedSparsityConfig::set_global_layout(int64_t h, SparsityLayout& layout) const {
  const int64_t n = layout.blocks();
  const bool bidirectional = o_.attention == "bidirectional";
  const int64_t g = o_.num_global_blocks;
  // The global blocks are counted from the end of each window; head h uses pattern
  // h % num_different_global_patterns.
  const int64_t first_global = o_.num_local_blocks - (1 + h % o_.num_different_global_patterns) * g;
  // Every full window.
  const int64_t end = n - n % o_.num_local_blocks;
  for (int64_t i = first_global; i < end; i += o_.num_local_blocks) {
    fill(layout, h, bidirectional ? 0 : i, kEnd, i, i + g);
    if (o_.horizontal_global_attention) fill(layout, h, i, i + g, 0, kEnd);
  }
  // A short last window: its global blocks are pulled back inside the sequence (the start
  // may go negative when the window is shorter than g, and is then read as Python reads it).
  if (end < n) {
    const int64_t start = std::min(end + first_global, n - g);
    fill(layout, h, bidirectional ? 0 : start, kEnd, start, start + g);
    if (o_.horizontal_global_attention) fill(layout, h, start, start + g, 0, kEnd);
  }
}

SparsityLayout FixedSparsityConfig::make_layout(int64_t seq_len) const {
  SparsityLayout layout = setup_layout(seq_len);
  for (int64_t h = 0; h < num_layout_heads(); ++h) {
    set_local_layout(h, layout);
    set_global_layout(h, layout);
  }
  propagate_first_head_layout(layout);
  return layout;
}

}  // namespace deepspeed::ops::sparse_attention
