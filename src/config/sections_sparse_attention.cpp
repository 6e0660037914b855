// "sparse_attention" (docs/sparse_attention.md): DeepSpeed's get_sparse_attention. Each mode
// takes the keys of its sparsity configuration; a key of another mode is an error here (DeepSpeed
// ignores it silently, so a typo in a mode's key would change nothing). The values' ranges are
// checked where DeepSpeed checks them, by the sparsity configurations themselves
// (<deepspeed/sparsity_config.h>), with DeepSpeed's messages.
#include <map>

#include "config/json_values.h"
#include "config/sections.h"

namespace deepspeed {

namespace {

using config_detail::SectionReader;

// The keys each mode reads besides "mode" and "block" (DeepSpeed's runtime/config.py, plus
// "attention" where the sparsity class takes it, and our "seed" where blocks are random).
const std::map<std::string, std::vector<std::string_view>>& mode_keys() {
  static const std::map<std::string, std::vector<std::string_view>> keys = {
      {"dense", {"different_layout_per_head"}},
      {"fixed",
       {"different_layout_per_head", "num_local_blocks", "num_global_blocks", "attention",
        "horizontal_global_attention", "num_different_global_patterns"}},
      {"variable",
       {"different_layout_per_head", "num_random_blocks", "local_window_blocks", "global_block_indices",
        "global_block_end_indices", "attention", "horizontal_global_attention", "seed"}},
      {"bigbird",
       {"different_layout_per_head", "num_random_blocks", "num_sliding_window_blocks", "num_global_blocks",
        "attention", "seed"}},
      {"bslongformer",
       {"different_layout_per_head", "num_sliding_window_blocks", "global_block_indices",
        "global_block_end_indices", "attention"}},
      {"local_sliding_window", {"num_sliding_window_blocks", "attention"}},
  };
  return keys;
}

std::vector<int64_t> integer_list(const SectionReader& s, std::string_view key, std::vector<int64_t> fallback) {
  const nlohmann::json* v = s.find(key);
  if (v == nullptr) return fallback;
  const std::string path = s.path(key);
  if (!v->is_array()) config_detail::throw_expected(path, "a list of integers", *v);
  std::vector<int64_t> out;
  for (size_t i = 0; i < v->size(); ++i) {
    out.push_back(config_detail::to_int((*v)[i], path + "[" + std::to_string(i) + "]"));
  }
  return out;
}

}  // namespace

SparseAttentionConfig read_sparse_attention_config(const nlohmann::json& section, const std::string& path) {
  SparseAttentionConfig c;
  const SectionReader any(section, path, SectionReader::AnyKey{});
  c.mode = any.string("mode", c.mode);
  const auto it = mode_keys().find(c.mode);
  if (it == mode_keys().end()) {
    throw ConfigError(any.path("mode"), "Given sparsity mode, " + c.mode +
                                            ", has not been implemented yet! (expected dense, fixed, variable, "
                                            "bigbird, bslongformer or local_sliding_window)");
  }
  std::vector<std::string_view> known = {"mode", "block"};
  known.insert(known.end(), it->second.begin(), it->second.end());
  const SectionReader s(section, path, known);

  c.block = s.integer("block", c.block, 1);
  c.different_layout_per_head = s.boolean("different_layout_per_head", c.different_layout_per_head);
  c.num_local_blocks = s.integer("num_local_blocks", c.num_local_blocks, 1);
  c.num_global_blocks = s.integer("num_global_blocks", c.num_global_blocks, 0);
  if (c.mode == "local_sliding_window") c.attention = "unidirectional";  // that class's default
  c.attention = s.string("attention", c.attention);
  c.horizontal_global_attention = s.boolean("horizontal_global_attention", c.horizontal_global_attention);
  c.num_different_global_patterns = s.integer("num_different_global_patterns", c.num_different_global_patterns, 1);
  if (c.mode == "bigbird") c.num_random_blocks = 1;  // DeepSpeed's BigBird default (Variable's is 0)
  c.num_random_blocks = s.integer("num_random_blocks", c.num_random_blocks, 0);
  c.local_window_blocks = integer_list(s, "local_window_blocks", c.local_window_blocks);
  if (c.local_window_blocks.empty()) {
    throw ConfigError(s.path("local_window_blocks"), "needs at least one window size");
  }
  c.global_block_indices = integer_list(s, "global_block_indices", c.global_block_indices);
  if (const nlohmann::json* end = s.find("global_block_end_indices"); end != nullptr && !end->is_null()) {
    c.global_block_end_indices = integer_list(s, "global_block_end_indices", {});
  }
  c.num_sliding_window_blocks = s.integer("num_sliding_window_blocks", c.num_sliding_window_blocks, 0);
  c.seed = static_cast<uint64_t>(s.integer("seed", 0, 0));
  return c;
}

}  // namespace deepspeed
