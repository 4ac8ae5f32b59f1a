// The files are the spool: which files hold a configured log's records (the
// live file and its rotated siblings, plain, .gz or .zst), what each begins
// with, and the record type of a line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "cursor.hpp"
#include "readers.hpp"

namespace mtalog::ship {

// Bytes of a file's start kept to tell files apart (see file_identity.hpp).
inline constexpr std::size_t kHeadBytes = 4096;

struct Candidate {
    std::string name; // path on disk
    Encoding encoding = Encoding::plain;
    dev_t dev = 0;
    ino_t ino = 0;
    std::uint64_t size = 0; // on disk
    std::int64_t mtime_ns = 0;
    std::int64_t birth_ns = 0;   // the inode's birth time, where kept (0: not known)
    bool live = false;           // the configured path itself
    std::uint64_t canonical = 0; // hash of the log's base name and the first record line; 0: none yet
    std::string head;            // the first kHeadBytes decoded bytes (fewer in a shorter file)
    std::string first_line;      // the first record line (for an old cursor's keys)
    bool incomplete = false;     // a compressed file whose data stops early (being written, or cut)
    bool unreadable = false;     // listed, but its start could not be read (see `error`)
    std::string error;
    std::uint64_t key = 0;   // resolved (file_identity.hpp); 0 until then
    bool new_form = false;   // its identity was not yet known for its key (a fresh compressed copy, say)
    std::string copy_of;     // a byte-for-byte copy of this listed file: not shipped (key 0)

    [[nodiscard]] std::pair<dev_t, ino_t> identity() const { return {dev, ino}; }
    [[nodiscard]] FileId file_id() const { return {dev, ino, birth_ns}; }
};

// 64-bit FNV-1a.
[[nodiscard]] std::uint64_t fnv1a(std::string_view data, std::uint64_t seed = 14695981039346656037ULL);
[[nodiscard]] std::string key_text(std::uint64_t key); // 16 hex digits

// The canonical key of a file of the log `base` (its configured file name,
// no directory) whose first record line is `line`: the same whatever the
// directory, the path's spelling, the working directory, a rename or a
// compression.
[[nodiscard]] std::uint64_t canonical_key(std::string_view base, std::string_view line);
// The key mtalog-ship 1 gave the same file (a hash of the configured path as
// written), for reading an old cursor.
[[nodiscard]] std::uint64_t legacy_key(const std::string &configured_path, std::string_view line);

// What a file starts with, remembered per (device, inode, size, mtime) for
// compressed files (they do not change once complete) and per (device,
// inode) for plain files with a whole head (they only grow).
class HeadCache {
public:
    struct Entry {
        std::uint64_t canonical = 0;
        std::string head;
        std::string first_line; // for legacy keys
        bool incomplete = false;
    };
    [[nodiscard]] const Entry *find(const Candidate &c) const;
    void put(const Candidate &c, Entry e);
    void keep_only(const std::vector<Candidate> &listed); // forgets files no longer listed

private:
    struct Slot {
        dev_t dev;
        ino_t ino;
        std::uint64_t size;
        std::int64_t mtime_ns;
        bool plain;
        Entry entry;
    };
    std::vector<Slot> slots_;
};

// A regular file's identity and size (lstat, and statx for the birth
// time); nullopt when it is missing or not a regular file.
struct FileStat {
    FileId id;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
};
[[nodiscard]] std::optional<FileStat> stat_file(const std::string &name);

// The live file and the rotated siblings of `path` (names starting with its
// base name followed by '.' or '-', see is_rotated_sibling), each with its
// head read; `header` is the line a file of this format starts with.
// Candidates without a complete record yet are left out (nothing to ship),
// unreadable ones are kept (marked). Oldest first, the live file last.
// `complete` (when given) says whether the directory could be read.
[[nodiscard]] std::vector<Candidate> list_candidates(const std::string &path, const std::string &header,
                                                     HeadCache &cache, bool *complete = nullptr);

// Whether `name` (a file name, no directory) is a rotated form of `base`:
// mtalog's base.YYYYMMDD-HHMMSS[-N], logrotate's base.N or base-YYYYMMDD[-N],
// each maybe .gz or .zst. Nothing else beside the live file is shipped.
[[nodiscard]] bool is_rotated_sibling(std::string_view name, std::string_view base);

// The length of the header line (with its newline) `head` starts with: the
// format's `header`, or for CSV a header another version wrote; 0 if none.
[[nodiscard]] std::size_t header_length(std::string_view head, const std::string &header);

// The record type of a line: `only_type` when the file carries one kind,
// else read from the line by its format; "record" when it cannot be told.
[[nodiscard]] std::string_view record_type(std::string_view line, const std::string &format,
                                           const std::string &only_type);

} // namespace mtalog::ship
