// DeepSpeed's sparsity configurations of block-sparse self-attention
// (deepspeed.ops.sparse_attention: Dense, Fixed, Variable, BigBird, BSLongformer,
// LocalSlidingWindow): which blocks of the [seq, seq] attention matrix each head computes.
//
//   using namespace deepspeed::ops::sparse_attention;
//   FixedSparsityConfig fixed({.num_heads = 4, .block = 16, .num_local_blocks = 4});
//   SparsityLayout layout = fixed.make_layout(1024);   // [4][64][64] of 0/1
//
// Promises:
// - make_layout(seq_len) gives DeepSpeed's layout block for block, for every parameter,
//   including its quirks (a short last local window, global indices past the end). The random
//   blocks of Variable and BigBird are what DeepSpeed draws after Python's `random.seed(seed)`
//   (the same Mersenne Twister and sampling): DeepSpeed draws from an unseeded global state,
//   so its layouts vary run to run; ours are a function of the config (docs/compatibility.md).
// - Bad parameters throw OpError with DeepSpeed's message: at construction for what
//   DeepSpeed checks in __init__, in make_layout for what it checks there (a sequence length
//   that is not a multiple of the block, windows larger than the sequence).
// - No LibTorch: the ds_sparse_layout tool and the op (<deepspeed/sparse_attention.h>) use
//   this very code.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <deepspeed/config.h>

namespace deepspeed::ops::sparse_attention {

// A [heads][blocks][blocks] array of 0/1: element (h, r, c) is 1 when head h computes the
// block of queries r * block.. and keys c * block...
class SparsityLayout {
 public:
  SparsityLayout(int64_t heads, int64_t blocks);

  int64_t heads() const { return heads_; }
  int64_t blocks() const { return blocks_; }
  uint8_t at(int64_t h, int64_t r, int64_t c) const { return data_[index(h, r, c)]; }
  void set(int64_t h, int64_t r, int64_t c, uint8_t v = 1) { data_[index(h, r, c)] = v; }
  // Blocks kept, over all heads.
  int64_t count() const;
  // count() / (heads * blocks^2).
  double density() const;
  // The top-left [heads][n][n] corner: what DeepSpeed's op uses for a sequence of n blocks
  // when the layout was made for a longer one.
  SparsityLayout leading(int64_t n) const;
  // JSON text, [heads][row_blocks][col_blocks], one row block per line.
  std::string to_json() const;

  bool operator==(const SparsityLayout&) const = default;

 private:
  size_t index(int64_t h, int64_t r, int64_t c) const {
    return static_cast<size_t>((h * blocks_ + r) * blocks_ + c);
  }
  int64_t heads_, blocks_;
  std::vector<uint8_t> data_;
};

// What every configuration has (DeepSpeed's SparsityConfig).
struct SparsityOptions {
  int64_t num_heads = 0;  // required
  int64_t block = 16;
  bool different_layout_per_head = false;
};

class SparsityConfig {
 public:
  explicit SparsityConfig(const SparsityOptions& options);
  virtual ~SparsityConfig() = default;

  virtual SparsityLayout make_layout(int64_t seq_len) const = 0;
  // "dense", "fixed", ...: the config section's mode name.
  virtual std::string mode() const = 0;

  int64_t num_heads() const { return num_heads_; }
  int64_t block() const { return block_; }
  bool different_layout_per_head() const { return different_layout_per_head_; }

 protected:
  // Zeros for every head; throws DeepSpeed's error when seq_len is not a multiple of block.
  SparsityLayout setup_layout(int64_t seq_len) const;
  // Heads beyond the first copy head 0 unless different_layout_per_head.
  void propagate_first_head_layout(SparsityLayout& layout) const;
  // Heads make_layout builds one by one: all of them, or only the first.
  int64_t num_layout_heads() const { return different_layout_per_head_ ? num_heads_ : 1; }

 private:
  int64_t num_heads_, block_;
  bool different_layout_per_head_;
};

// Every block (a reference for comparison).
class DenseSparsityConfig final : public SparsityConfig {
 public:
  explicit DenseSparsityConfig(const SparsityOptions& options) : SparsityConfig(options) {}
  SparsityLayout make_layout(int64_t seq_len) const override;
  std::string mode() const override { return "dense"; }
};

// Sparse Transformers' "fixed" pattern: local windows of num_local_blocks, and in each window
// num_global_blocks (counted from its end; other heads shift by num_global_blocks when
// num_different_global_patterns > 1) that every later (unidirectional) or every (bidirectional)
// query attends to; horizontal_global_attention lets those blocks attend to everything.
struct FixedOptions : SparsityOptions {
  int64_t num_local_blocks = 4;
  int64_t num_global_blocks = 1;
  std::string attention = "bidirectional";
  bool horizontal_global_attention = false;
  int64_t num_different_global_patterns = 1;
};
class FixedSparsityConfig final : public SparsityConfig {
 public:
  explicit FixedSparsityConfig(const FixedOptions& options);
  SparsityLayout make_layout(int64_t seq_len) const override;
  std::string mode() const override { return "fixed"; }
  const FixedOptions& options() const { return o_; }

 private:
  void set_local_layout(int64_t h, SparsityLayout& layout) const;
  void set_global_layout(int64_t h, SparsityLayout& layout) const;
  FixedOptions o_;
};

// Fixed with windows of varying size (the last size repeats), explicit global blocks (or
// ranges, with global_block_end_indices) and num_random_blocks random blocks per row.
struct VariableOptions : SparsityOptions {
  int64_t num_random_blocks = 0;
  std::vector<int64_t> local_window_blocks = {4};
  std::vector<int64_t> global_block_indices = {0};
  std::optional<std::vector<int64_t>> global_block_end_indices;
  std::string attention = "bidirectional";
  bool horizontal_global_attention = false;
  uint64_t seed = 0;  // ours: Python's random.seed(seed) before the draws
};
class VariableSparsityConfig final : public SparsityConfig {
 public:
  explicit VariableSparsityConfig(const VariableOptions& options);
  SparsityLayout make_layout(int64_t seq_len) const override;
  std::string mode() const override { return "variable"; }
  const VariableOptions& options() const { return o_; }

 private:
  VariableOptions o_;
};

// BigBird: num_random_blocks random blocks per row, a sliding window of
// num_sliding_window_blocks, and the first num_global_blocks as global rows and columns.
struct BigBirdOptions : SparsityOptions {
  int64_t num_random_blocks = 1;
  int64_t num_sliding_window_blocks = 3;
  int64_t num_global_blocks = 1;
  std::string attention = "bidirectional";
  uint64_t seed = 0;  // ours, as VariableOptions::seed
};
class BigBirdSparsityConfig final : public SparsityConfig {
 public:
  explicit BigBirdSparsityConfig(const BigBirdOptions& options);
  SparsityLayout make_layout(int64_t seq_len) const override;
  std::string mode() const override { return "bigbird"; }
  const BigBirdOptions& options() const { return o_; }

 private:
  BigBirdOptions o_;
};

// Block-sparse Longformer: a sliding window and global blocks (or ranges) as rows and columns.
struct BSLongformerOptions : SparsityOptions {
  int64_t num_sliding_window_blocks = 3;
  std::vector<int64_t> global_block_indices = {0};
  std::optional<std::vector<int64_t>> global_block_end_indices;
  std::string attention = "bidirectional";
};
class BSLongformerSparsityConfig final : public SparsityConfig {
 public:
  explicit BSLongformerSparsityConfig(const BSLongformerOptions& options);
  SparsityLayout make_layout(int64_t seq_len) const override;
  std::string mode() const override { return "bslongformer"; }
  const BSLongformerOptions& options() const { return o_; }

 private:
  BSLongformerOptions o_;
};

// A purely local sliding window (causal by default). DeepSpeed's class takes no
// different_layout_per_head: the field is ignored.
struct LocalSlidingWindowOptions : SparsityOptions {
  int64_t num_sliding_window_blocks = 3;
  std::string attention = "unidirectional";
};
class LocalSlidingWindowSparsityConfig final : public SparsityConfig {
 public:
  explicit LocalSlidingWindowSparsityConfig(const LocalSlidingWindowOptions& options);
  SparsityLayout make_layout(int64_t seq_len) const override;
  std::string mode() const override { return "local_sliding_window"; }
  const LocalSlidingWindowOptions& options() const { return o_; }

 private:
  LocalSlidingWindowOptions o_;
};

// The configuration a "sparse_attention" config section describes, for a layer of num_heads
// heads. Throws OpError as the constructors do.
std::shared_ptr<const SparsityConfig> make_sparsity_config(const SparseAttentionConfig& section, int64_t num_heads);

}  // namespace deepspeed::ops::sparse_attention
