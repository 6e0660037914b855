// "Did you mean" hints: the known key closest to a misspelled one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace deepspeed::config_detail {

// Levenshtein distance (insertions, deletions, substitutions each cost 1).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate with the smallest edit distance to `key`; ties go to the earlier
// candidate. Empty when there are no candidates.
std::string nearest_key(std::string_view key, const std::vector<std::string_view>& candidates);

}  // namespace deepspeed::config_detail
