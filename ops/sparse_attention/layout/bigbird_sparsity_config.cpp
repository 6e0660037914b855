// DeepSpeed's BigBirdSparsityConfig: random blocks, a sliding window, global first blocks.
#include <deepspeed/sparsity_config.h>

#include "sparse_attention/layout/layout_rules.h"
#include "sparse_attention/layout/python_random.h"

namespace deepspeed::ops::sparse_attention {

using namespace layout_detail;

namespace {
const std::string kBigBird = "BigBirdSparsityConfig";
}  // namespace

BigBirdSparsityConfig::BigBirdSparsityConfig(const BigBirdOptions& options) : SparsityConfig(options), o_(options) {
  check_at_least(o_.num_random_blocks, 0, "num_random_blocks", kBigBird);
  check_at_least(o_.num_sliding_window_blocks, 0, "num_sliding_window_blocks", kBigBird);
  check_at_least(o_.num_global_blocks, 0, "num_global_blocks", kBigBird);
  check_attention(o_.attention, kBigBird);
}

SparsityLayout BigBirdSparsityConfig::make_layout(int64_t seq_len) const {
  SparsityLayout layout = setup_layout(seq_len);
  const int64_t n = layout.blocks();
  const bool causal = o_.attention == "unidirectional";
  PythonRandom random(o_.seed);
  for (int64_t h = 0; h < num_layout_heads(); ++h) {
    set_random_blocks(layout, h, o_.num_random_blocks, causal, random, kBigBird);
    set_sliding_window(layout, h, o_.num_sliding_window_blocks, false, kBigBird);
    if (n < o_.num_global_blocks) {
      fail(kBigBird, "Number of global blocks, " + std::to_string(o_.num_global_blocks) +
                         ", must be smaller than overall number of blocks in a row, " + std::to_string(n) + "!");
    }
    fill(layout, h, 0, o_.num_global_blocks, 0, kEnd);
    fill(layout, h, 0, kEnd, 0, o_.num_global_blocks);
    if (causal) keep_lower_triangle(layout);
  }
  propagate_first_head_layout(layout);
  return layout;
}

}  // namespace deepspeed::ops::sparse_attention
