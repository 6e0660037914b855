#include "sparse_attention_choice.h"

namespace gpt {

std::optional<deepspeed::SparseAttentionConfig> choose_sparse_attention(const nlohmann::json& section,
                                                                        const std::string& mode) {
  if (section.is_null() && mode.empty()) return std::nullopt;
  nlohmann::json s = section.is_null() ? nlohmann::json::object() : section;
  if (!mode.empty()) s["mode"] = mode;
  const std::string chosen = s.value("mode", "fixed");
  if (!s.contains("attention") && chosen != "dense" && chosen != "local_sliding_window") s["attention"] = "unidirectional";
  return deepspeed::read_sparse_attention_config(s);
}

}  // namespace gpt
