#include "sparse_attention/layout/layout_rules.h"

#include <algorithm>

#include <deepspeed/errors.h>

#include "sparse_attention/layout/python_random.h"

namespace deepspeed::ops::sparse_attention::layout_detail {

int64_t slice_bound(int64_t bound, int64_t n) {
  if (bound == kEnd) return n;
  if (bound < 0) bound += n;
  return std::clamp<int64_t>(bound, 0, n);
}

void fill(SparsityLayout& layout, int64_t h, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const int64_t n = layout.blocks();
  const int64_t rb = slice_bound(r0, n), re = slice_bound(r1, n);
  const int64_t cb = slice_bound(c0, n), ce = slice_bound(c1, n);
  for (int64_t r = rb; r < re; ++r) {
    for (int64_t c = cb; c < ce; ++c) layout.set(h, r, c);
  }
}

void keep_lower_triangle(SparsityLayout& layout) {
  for (int64_t h = 0; h < layout.heads(); ++h) {
    for (int64_t r = 0; r < layout.blocks(); ++r) {
      for (int64_t c = r + 1; c < layout.blocks(); ++c) layout.set(h, r, c, 0);
    }
  }
}

void set_sliding_window(SparsityLayout& layout, int64_t h, int64_t window, bool causal, const std::string& who) {
  const int64_t n = layout.blocks();
  if (n < window) {
    fail(who, "Number of sliding window blocks, " + std::to_string(window) +
                  ", must be smaller than overall number of blocks in a row, " + std::to_string(n) + "!");
  }
  const int64_t w = window / 2;
  for (int64_t row = 0; row < n; ++row) {
    const int64_t start = std::max<int64_t>(0, row - w);
    const int64_t end = causal ? row + 1 : std::min(row + w + 1, n);
    fill(layout, h, row, row + 1, start, end);
  }
}

void set_random_blocks(SparsityLayout& layout, int64_t h, int64_t num_random, bool up_to_row, PythonRandom& random,
                       const std::string& who) {
  const int64_t n = layout.blocks();
  if (n < num_random) {
    fail(who, "Number of random blocks, " + std::to_string(num_random) +
                  ", must be smaller than overall number of blocks in a row, " + std::to_string(n) + "!");
  }
  for (int64_t row = 0; row < n; ++row) {
    const int64_t population = up_to_row ? row + 1 : n;
    if (num_random > population) {
      fail(who, "Sample larger than population or is negative (num_random_blocks " + std::to_string(num_random) +
                    " in block row " + std::to_string(row) + " of unidirectional attention)");
    }
    for (int64_t col : random.sample_range(population, num_random)) layout.set(h, row, col);
  }
}

void fail(const std::string& who, const std::string& message) { throw OpError(who + ": " + message); }

void check_attention(const std::string& attention, const std::string& who) {
  if (attention != "unidirectional" && attention != "bidirectional") {
    fail(who, "only \"uni/bi-directional\" attentions are supported for now! (attention is \"" + attention + "\")");
  }
}

void check_global_blocks(const std::vector<int64_t>& starts, const std::optional<std::vector<int64_t>>& ends,
                         const std::string& who) {
  for (int64_t s : starts) check_at_least(s, 0, "global_block_indices", who);
  if (!ends) return;
  if (starts.size() != ends->size()) {
    fail(who, "Global block start indices length, " + std::to_string(starts.size()) +
                  ", must be same as global block end indices length, " + std::to_string(ends->size()) + "!");
  }
  for (size_t i = 0; i < starts.size(); ++i) {
    if (starts[i] >= (*ends)[i]) {
      fail(who, "Global block start index, " + std::to_string(starts[i]) +
                    ", must be smaller than global block end index, " + std::to_string((*ends)[i]) + "!");
    }
  }
}

void check_at_least(int64_t value, int64_t minimum, const std::string& name, const std::string& who) {
  if (value < minimum) {
    fail(who, name + " must be at least " + std::to_string(minimum) + ", got " + std::to_string(value));
  }
}

}  // namespace deepspeed::ops::sparse_attention::layout_detail
