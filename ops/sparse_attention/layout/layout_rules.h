// The pieces DeepSpeed's sparsity configurations share: Python's slice assignment on a
// layout (negative and past-the-end bounds as Python takes them), the sliding window, global
// blocks given as indices or ranges, the lower-triangle cut of unidirectional attention, and
// the checks and messages that go with them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <deepspeed/sparsity_config.h>

namespace deepspeed::ops::sparse_attention::layout_detail {

// A slice bound as Python reads it for a dimension of n: negative counts from the end, then
// clamped to [0, n]. kEnd stands for an omitted bound.
inline constexpr int64_t kEnd = INT64_MAX;
int64_t slice_bound(int64_t bound, int64_t n);

// layout[h, r0:r1, c0:c1] = 1 with Python's slice semantics.
void fill(SparsityLayout& layout, int64_t h, int64_t r0, int64_t r1, int64_t c0, int64_t c1);

// Zeros every block above the diagonal (torch.tril over all heads).
void keep_lower_triangle(SparsityLayout& layout);

// Each row r gets the blocks [r - w, r + w] of w = window / 2 (clipped to the sequence);
// unidirectional stops at r when `causal`. Throws when the window is wider than the sequence.
void set_sliding_window(SparsityLayout& layout, int64_t h, int64_t window, bool causal, const std::string& who);

class PythonRandom;
// num_random blocks per row, drawn as DeepSpeed draws them: random.sample over the row's
// blocks, or with `up_to_row` over the blocks up to the row (BigBird's unidirectional
// attention, where a row with fewer fails as random.sample does).
void set_random_blocks(SparsityLayout& layout, int64_t h, int64_t num_random, bool up_to_row, PythonRandom& random,
                       const std::string& who);

// Throws OpError "who: message".
[[noreturn]] void fail(const std::string& who, const std::string& message);

// "unidirectional" or "bidirectional", else DeepSpeed's NotImplementedError message.
void check_attention(const std::string& attention, const std::string& who);
// global_block_indices and global_block_end_indices: same lengths, each start below its end,
// none negative.
void check_global_blocks(const std::vector<int64_t>& starts, const std::optional<std::vector<int64_t>>& ends,
                         const std::string& who);
// An option that must be at least `minimum`.
void check_at_least(int64_t value, int64_t minimum, const std::string& name, const std::string& who);

}  // namespace deepspeed::ops::sparse_attention::layout_detail
