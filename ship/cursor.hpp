// The shipper's durable state (cursor.json in state_dir): per file key, the
// offset before which every record is final in the stream, what tells the
// file apart from others, and whether it is finished; and the stream
// sequence after which a restart reads this node's messages back. Written
// with write, fsync, rename and an fsync of the directory.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <variant>
#include <vector>

namespace mtalog::ship {

// A file on disk: device, inode and, where the file system keeps it, the
// inode's birth time (a reused inode has a new one; 0 when unknown).
struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    std::int64_t birth_ns = 0;
    bool operator==(const FileId &) const = default;
};

struct FileEntry {
    std::string path;            // the configured path, for messages
    std::uint64_t canonical = 0; // see spool.hpp
    unsigned generation = 1;     // >1: another file began like one already known
    std::uint64_t final_offset = 0;
    // A finished rotated file: where its last whole record ends, and its
    // size then (a trailing partial line is not a record).
    std::optional<std::uint64_t> done_end;
    std::uint64_t done_size = 0;
    // The hash of the file's first fp_len bytes (up to 4 KiB): a file that
    // starts like this one but differs within them is another file.
    std::uint64_t fp_len = 0, fp_hash = 0;
    std::vector<FileId> ids; // its identities seen lately (plain, compressed)
    std::map<std::uint64_t, std::uint64_t> skipped; // over-long lines past final_offset: [start, end)
    unsigned missed = 0;                      // prunes in a row that found none of its files
};

// A key of a cursor that mtalog-ship 1 wrote (keys hashed the path as
// written): mapped to the new keys at the first listing.
struct LegacyEntry {
    std::string path;
    std::uint64_t offset = 0;
    bool done = false;
};

struct Cursor {
    std::string node;
    std::uint64_t scan_from = 0; // a restart reads this node's messages after it
    std::map<std::uint64_t, FileEntry> files;
    std::map<std::uint64_t, LegacyEntry> legacy;
};

// Counts a miss for every entry whose key is not in `present`, and forgets
// entries missed `misses` times in a row unless `keep(key)`; returns the
// keys forgotten. A file renamed or unreadable for a moment keeps its key.
std::vector<std::uint64_t> age_entries(std::map<std::uint64_t, FileEntry> &files,
                                       const std::set<std::uint64_t> &present, unsigned misses,
                                       const std::function<bool(std::uint64_t)> &keep);

// A file key as state files spell it (16 lower-case hex digits); throws
// std::runtime_error for any other spelling.
std::uint64_t file_key_of(const std::string &hex);

// A missing file is an empty cursor; a file that cannot be read or parsed is
// an error text.
[[nodiscard]] std::variant<Cursor, std::string> load_cursor(const std::string &path);
// Durably replaces `path`; an error text on failure.
[[nodiscard]] std::optional<std::string> save_cursor(const Cursor &cursor, const std::string &path);
// Reads a state file whole: nullopt in `text` when it does not exist; an
// error text when it cannot be read.
[[nodiscard]] std::optional<std::string> read_state_file(const std::string &path, std::optional<std::string> &text);

// Writes `text` to `path` atomically (temporary name, fsync when `durable`,
// rename); the file gets exactly `mode`.
[[nodiscard]] std::optional<std::string> write_atomically(const std::string &path, const std::string &text,
                                                          bool durable, unsigned mode = 0600);

} // namespace mtalog::ship
