// A set of byte ranges [start, end), kept merged: the records of one file
// that a read of the stream found, or that a reader has already seen. A
// file's records are contiguous, so a set stays a handful of ranges however
// many records it holds.
#pragma once

#include <cstdint>
#include <map>

namespace mtalog::ship {

class RangeSet {
public:
    // Adds [start, end); returns false when it was all there already.
    bool add(std::uint64_t start, std::uint64_t end);
    // Takes [start, end) out, splitting a range around it.
    void remove(std::uint64_t start, std::uint64_t end);
    [[nodiscard]] bool covers(std::uint64_t start, std::uint64_t end) const;
    // Forgets everything before `offset`.
    void trim_before(std::uint64_t offset);
    [[nodiscard]] bool empty() const { return ranges_.empty(); }
    [[nodiscard]] std::size_t size() const { return ranges_.size(); }
    [[nodiscard]] const std::map<std::uint64_t, std::uint64_t> &ranges() const { return ranges_; }
    bool operator==(const RangeSet &) const = default;

private:
    std::map<std::uint64_t, std::uint64_t> ranges_; // start -> end, disjoint, not touching
};

} // namespace mtalog::ship
