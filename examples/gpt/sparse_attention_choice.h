// The GPT example's choice of sparse attention: the ds_config's "sparse_attention" section
// (docs/sparse_attention.md), with --sparse_attention MODE replacing its mode (or standing
// alone, with that mode's defaults). A GPT is causal, so "attention" defaults to
// "unidirectional" where the mode has it.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <deepspeed/config.h>

namespace gpt {

// `section`: the config's "sparse_attention" value (null when absent); `mode`: the flag
// ("" when not given). nullopt when neither asks for sparse attention. Throws ConfigError.
std::optional<deepspeed::SparseAttentionConfig> choose_sparse_attention(const nlohmann::json& section,
                                                                        const std::string& mode);

}  // namespace gpt
