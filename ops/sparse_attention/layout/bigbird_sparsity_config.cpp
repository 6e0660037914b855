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
    if (n < o_.num_random_blocks) {
      fail(kBigBird, "Number of random blocks, " + std::to_string(o_.num_random_blocks) +
                         ", must be smaller than overall number of blocks in a row, " + std::to_string(n) + "!");
    }
    // Unidirectional draws among the blocks up to the row, so a row with fewer of them than
    // num_random_blocks fails as Python's random.sample does.
    for (int64_t row = 0; row < n; ++row) {
      const int64_t population = causal ? row + 1 : n;
      if (o_.num_random_blocks > population) {
        fail(kBigBird, "Sample larger than population or is negative (num_random_blocks " +
                           std::to_string(o_.num_random_blocks) + " in block row " + std::to_string(row) +
                           " of unidirectional attention)");
      }
      for (int64_t col : random.sample_range(population, o_.num_random_blocks)) layout.set(h, row, col);
    }
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
