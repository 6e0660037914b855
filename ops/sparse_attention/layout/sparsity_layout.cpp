#include <numeric>

#include <deepspeed/errors.h>
#include <deepspeed/sparsity_config.h>

namespace deepspeed::ops::sparse_attention {

SparsityLayout::SparsityLayout(int64_t heads, int64_t blocks)
    : heads_(heads), blocks_(blocks), data_(static_cast<size_t>(heads * blocks * blocks), 0) {
  if (heads < 1 || blocks < 0) {
    throw OpError("SparsityLayout: needs at least one head and no negative block count, got " +
                  std::to_string(heads) + " heads of " + std::to_string(blocks) + " blocks");
  }
}

int64_t SparsityLayout::count() const { return std::accumulate(data_.begin(), data_.end(), int64_t{0}); }

double SparsityLayout::density() const {
  return data_.empty() ? 0.0 : static_cast<double>(count()) / static_cast<double>(data_.size());
}

SparsityLayout SparsityLayout::leading(int64_t n) const {
  if (n < 0 || n > blocks_) {
    throw OpError("SparsityLayout: " + std::to_string(n) + " blocks asked of a layout of " + std::to_string(blocks_));
  }
  SparsityLayout out(heads_, n);
  for (int64_t h = 0; h < heads_; ++h) {
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < n; ++c) out.set(h, r, c, at(h, r, c));
    }
  }
  return out;
}

std::string SparsityLayout::to_json() const {
  std::string s = "[";
  for (int64_t h = 0; h < heads_; ++h) {
    s += h ? ",\n [" : "[";
    for (int64_t r = 0; r < blocks_; ++r) {
      s += r ? ",\n  [" : "[";
      for (int64_t c = 0; c < blocks_; ++c) {
        if (c) s += ',';
        s += at(h, r, c) ? '1' : '0';
      }
      s += ']';
    }
    s += ']';
  }
  s += "]\n";
  return s;
}

}  // namespace deepspeed::ops::sparse_attention
