// The shipper's durable state: per file key, the offset up to which every
// record is known to be in the stream, and ranges past it the stream already
// holds; and the stream sequence after which a restart must look for this
// node's messages. Written with write, fsync, rename, fsync of the directory,
// and only from acknowledged facts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

namespace mtalog::ship {

struct KeyState {
    std::string path;                              // the configured path, for messages
    std::uint64_t offset = 0;                      // every record before it is in the stream
    bool done = false;                             // a rotated file shipped to its end
    std::map<std::uint64_t, std::uint64_t> stored; // [start, end) past offset already in the stream

    // Records [start, end) as stored, merging neighbours.
    void add_stored(std::uint64_t start, std::uint64_t end);
    // Forgets [start, end) (one record inside a stored range), splitting the
    // range around it.
    void remove_stored(std::uint64_t start, std::uint64_t end);
    // The end of the stored range that starts at `start`, if any.
    [[nodiscard]] std::optional<std::uint64_t> stored_at(std::uint64_t start) const;
    // Forgets ranges before offset.
    void trim();
};

struct Cursor {
    std::string node;
    std::uint64_t scan_from = 0; // every message of this node after it may be unknown here
    std::map<std::uint64_t, KeyState> keys;
};

// A missing file is an empty cursor; a file that cannot be read or parsed is
// an error text.
[[nodiscard]] std::variant<Cursor, std::string> load_cursor(const std::string &path);
// Durably replaces `path`; an error text on failure.
[[nodiscard]] std::optional<std::string> save_cursor(const Cursor &cursor, const std::string &path);
// Writes `text` to `path` atomically (temporary name, fsync when `durable`,
// rename); the file gets exactly `mode`.
[[nodiscard]] std::optional<std::string> write_atomically(const std::string &path, const std::string &text,
                                                          bool durable, unsigned mode = 0600);

} // namespace mtalog::ship
