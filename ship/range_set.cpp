#include "range_set.hpp"

#include <algorithm>
#include <iterator>

namespace mtalog::ship {

bool RangeSet::add(std::uint64_t start, std::uint64_t end)
{
    if (start >= end || covers(start, end))
        return false;
    auto it = ranges_.upper_bound(start);
    if (it != ranges_.begin() && std::prev(it)->second >= start) {
        --it;
        start = it->first;
        end = std::max(end, it->second);
        it = ranges_.erase(it);
    }
    while (it != ranges_.end() && it->first <= end) {
        end = std::max(end, it->second);
        it = ranges_.erase(it);
    }
    ranges_.emplace(start, end);
    return true;
}

void RangeSet::remove(std::uint64_t start, std::uint64_t end)
{
    if (start >= end)
        return;
    auto it = ranges_.upper_bound(start);
    if (it != ranges_.begin())
        --it;
    while (it != ranges_.end() && it->first < end) {
        const auto [from, to] = *it;
        if (to <= start) {
            ++it;
            continue;
        }
        it = ranges_.erase(it);
        if (from < start)
            ranges_.emplace(from, start);
        if (end < to) {
            ranges_.emplace(end, to);
            break;
        }
    }
}

bool RangeSet::covers(std::uint64_t start, std::uint64_t end) const
{
    if (start >= end)
        return true;
    auto it = ranges_.upper_bound(start);
    if (it == ranges_.begin())
        return false;
    --it;
    return it->first <= start && end <= it->second;
}

void RangeSet::trim_before(std::uint64_t offset)
{
    while (!ranges_.empty() && ranges_.begin()->second <= offset)
        ranges_.erase(ranges_.begin());
    if (!ranges_.empty() && ranges_.begin()->first < offset) {
        const std::uint64_t end = ranges_.begin()->second;
        ranges_.erase(ranges_.begin());
        ranges_.emplace(offset, end);
    }
}

} // namespace mtalog::ship
