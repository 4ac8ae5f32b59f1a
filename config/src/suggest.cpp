#include "suggest.hpp"

#include <algorithm>
#include <numeric>

#include "document.hpp"

namespace mtacfg {

std::size_t edit_distance(std::string_view a_in, std::string_view b_in)
{
    const std::string a = to_lower(a_in), b = to_lower(b_in);
    // Optimal string alignment distance, three rows.
    std::vector<std::size_t> before(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
    std::iota(prev.begin(), prev.end(), std::size_t{0});
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                cur[j] = std::min(cur[j], before[j - 2] + 1);
        }
        before.swap(prev);
        prev.swap(cur);
    }
    return prev[b.size()];
}

std::optional<std::string> nearest(std::string_view word, const std::vector<std::string> &candidates)
{
    std::optional<std::string> best;
    std::size_t best_distance = 0;
    for (const auto &c : candidates) {
        const std::size_t d = edit_distance(word, c);
        const std::size_t limit = std::max<std::size_t>(2, std::max(word.size(), c.size()) / 3);
        if (d <= limit && (!best || d < best_distance)) {
            best = c;
            best_distance = d;
        }
    }
    return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string> &candidates)
{
    const auto n = nearest(word, candidates);
    return n ? " (did you mean '" + *n + "'?)" : std::string();
}

} // namespace mtacfg
