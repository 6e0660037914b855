// DeepSpeed's LocalSlidingWindowSparsityConfig: a purely local window, causal by default.
#include <deepspeed/sparsity_config.h>

#include "sparse_attention/layout/layout_rules.h"

namespace deepspeed::ops::sparse_attention {

using namespace layout_detail;

namespace {

const std::string kLocal = "LocalSlidingWindowSparsityConfig";

// DeepSpeed's class has no different_layout_per_head: every head gets head 0's layout.
SparsityOptions one_layout(SparsityOptions o) {
  o.different_layout_per_head = false;
  return o;
}

}  // namespace

LocalSlidingWindowSparsityConfig::LocalSlidingWindowSparsityConfig(const LocalSlidingWindowOptions& options)
    : SparsityConfig(one_layout(options)), o_(options) {
  check_at_least(o_.num_sliding_window_blocks, 0, "num_sliding_window_blocks", kLocal);
  check_attention(o_.attention, kLocal);
}

SparsityLayout LocalSlidingWindowSparsityConfig::make_layout(int64_t seq_len) const {
  SparsityLayout layout = setup_layout(seq_len);
  set_sliding_window(layout, 0, o_.num_sliding_window_blocks, o_.attention != "bidirectional", kLocal);
  propagate_first_head_layout(layout);
  return layout;
}

}  // namespace deepspeed::ops::sparse_attention
