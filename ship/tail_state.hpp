// What `mtalog-ship tail` has already written out, kept durably so that a
// record reaches its output once whatever the broker or a crash does:
// - per node and file key, the byte ranges of the records seen (a record is
//   [offset, offset + length + 1) of its file, so a file's records merge
//   into a range or a few);
// - per output file, its length once everything seen was written and
//   flushed: at start a longer file is cut back to it (records written but
//   never recorded as seen come again, unacknowledged).
// - the stream sequence up to which every record the stream's leader holds
//   was found seen (the check against the stream, see tail.cpp).
// Keys not used for `forget_after` are dropped, which bounds the state by
// the files the fleet wrote lately.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "range_set.hpp"

namespace mtalog::ship {

// Takes the lock "<path>.lock" (one tail per state); its descriptor, or -1
// with `error` set when another process holds it or it cannot be made.
int lock_state(const std::string &path, std::string &error);

class TailState {
public:
    // A missing file is an empty state.
    [[nodiscard]] static std::variant<TailState, std::string> load(const std::string &path);
    [[nodiscard]] std::optional<std::string> save(const std::string &path) const;

    // Whether the record was seen; if not, it is from now on (at `now`, unix
    // seconds).
    bool seen_before(std::string_view node, std::uint64_t key, std::uint64_t offset, std::uint64_t end,
                     std::int64_t now);
    // Whether the record was seen (nothing changes).
    [[nodiscard]] bool seen(std::string_view node, std::uint64_t key, std::uint64_t offset, std::uint64_t end) const;
    // Forgets keys not used since `before`; returns how many.
    std::size_t forget_unused(std::int64_t before);
    [[nodiscard]] std::size_t keys() const;

    std::map<std::string, std::uint64_t> outputs; // file name -> its length
    std::uint64_t checked = 0; // every record of the stream up to this sequence was seen

private:
    struct Seen {
        RangeSet ranges;
        std::int64_t used = 0;
    };
    std::map<std::string, std::map<std::uint64_t, Seen>, std::less<>> seen_; // node -> key -> seen
};

} // namespace mtalog::ship
