// The layout of a sequence as tile lists: the kernels and the CPU loops walk only these.
#include <vector>

#include "sparse_attention/block_sparse_attention.h"

namespace deepspeed::ops::sparse_attention::attention_detail {

TileIndex make_tile_index(const SparsityLayout& layout, int64_t block, int64_t tile, bool causal,
                          const torch::Device& device) {
  const int64_t per_block = block / tile;
  const int64_t n = layout.blocks() * per_block, heads = layout.heads();
  auto kept = [&](int64_t h, int64_t r, int64_t c) {
    return layout.at(h, r / per_block, c / per_block) != 0 && !(causal && c > r);
  };
  std::vector<int32_t> row_offsets, row_indices, col_offsets, col_indices;
  row_offsets.reserve(static_cast<size_t>(heads * (n + 1)));
  col_offsets.reserve(static_cast<size_t>(heads * (n + 1)));
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t r = 0; r < n; ++r) {
      row_offsets.push_back(static_cast<int32_t>(row_indices.size()));
      for (int64_t c = 0; c < n; ++c) {
        if (kept(h, r, c)) row_indices.push_back(static_cast<int32_t>(c));
      }
    }
    row_offsets.push_back(static_cast<int32_t>(row_indices.size()));
    for (int64_t c = 0; c < n; ++c) {
      col_offsets.push_back(static_cast<int32_t>(col_indices.size()));
      for (int64_t r = 0; r < n; ++r) {
        if (kept(h, r, c)) col_indices.push_back(static_cast<int32_t>(r));
      }
    }
    col_offsets.push_back(static_cast<int32_t>(col_indices.size()));
  }
  auto to_tensor = [&](const std::vector<int32_t>& v, std::vector<int64_t> shape) {
    return torch::from_blob(const_cast<int32_t*>(v.data()), shape, torch::kInt).clone().to(device);
  };
  TileIndex index;
  index.tile = tile;
  index.tiles = n;
  index.row_offsets = to_tensor(row_offsets, {heads, n + 1});
  index.row_indices = to_tensor(row_indices, {static_cast<int64_t>(row_indices.size())});
  index.col_offsets = to_tensor(col_offsets, {heads, n + 1});
  index.col_indices = to_tensor(col_indices, {static_cast<int64_t>(col_indices.size())});
  return index;
}

}  // namespace deepspeed::ops::sparse_attention::attention_detail
