// "Did you mean ...?" for misspelt option, block and module names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mtacfg {

// Case-insensitive edit distance (insert, delete, substitute, swap).
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible
// typo (at most a third of the longer word's length, and at least 2, away).
[[nodiscard]] std::optional<std::string> nearest(std::string_view word, const std::vector<std::string> &candidates);

// " (did you mean 'x'?)" or "".
[[nodiscard]] std::string did_you_mean(std::string_view word, const std::vector<std::string> &candidates);

} // namespace mtacfg
