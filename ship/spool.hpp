// The files are the spool: which files hold a configured log's records (the
// live file and its rotated siblings, plain, .gz or .zst), how each is known
// across renames and compression, and reading their lines.
//
// A file's key is a hash of the configured path and the file's first record
// line (after the format's header): it stays the same when logrotate or
// mtalog renames the file and when the compressor turns it into .gz or .zst,
// so an offset into the key's records means the same bytes in every form.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace mtalog::ship {

enum class Encoding { plain, gzip, zstd };

struct Candidate {
    std::string name; // path on disk
    Encoding encoding = Encoding::plain;
    dev_t dev = 0;
    ino_t ino = 0;
    std::uint64_t size = 0; // on disk
    std::int64_t mtime_ns = 0;
    bool live = false;     // the configured path itself
    std::uint64_t key = 0; // 0: no complete record yet
};

// 64-bit FNV-1a.
[[nodiscard]] std::uint64_t fnv1a(std::string_view data, std::uint64_t seed = 14695981039346656037ULL);
[[nodiscard]] std::string key_text(std::uint64_t key); // 16 hex digits
char *write_key_hex(char *out, std::uint64_t key);     // the same 16 digits at out; returns their end

// Sequential reading of a file's records, whatever its encoding.
class Reader {
public:
    virtual ~Reader() = default;
    // Reads up to `n` bytes at the current position; 0 at the end (for now,
    // for a plain file that grows), -1 with `error` set on failure.
    virtual long read(char *buf, std::size_t n) = 0;
    // Bytes consumed so far (offsets are into the decoded records).
    [[nodiscard]] virtual std::uint64_t position() const = 0;
    // Skips forward to `offset`; false if the data ends before it.
    bool skip_to(std::uint64_t offset);
    // A plain file's size and modification time now (it may still grow);
    // nullopt for a compressed file, which is complete.
    struct Now {
        std::uint64_t size = 0;
        std::int64_t mtime_ns = 0;
    };
    [[nodiscard]] virtual std::optional<Now> plain_now() const { return std::nullopt; }
    // The opened file's device and inode.
    [[nodiscard]] virtual std::pair<dev_t, ino_t> identity() const = 0;
    // Back to the start (plain files only).
    virtual bool rewind() { return false; }
    std::string error;
};

[[nodiscard]] std::unique_ptr<Reader> open_reader(const Candidate &c, std::string &error);

// Opens `c` and makes sure it is the file that was listed: a name can point
// at another file by the time it is opened (logrotate reuses "name.1", a
// rotation replaces the live file). nullptr with `error` when it is not.
[[nodiscard]] std::unique_ptr<Reader> open_listed(const Candidate &c, const std::string &path,
                                                  const std::string &header, std::string &error);

// Keys of compressed files, which never change once renamed into place
// (plain files are keyed again at each listing: one short read).
class KeyCache {
public:
    [[nodiscard]] std::optional<std::uint64_t> find(const Candidate &c) const;
    void put(const Candidate &c);

private:
    std::vector<Candidate> entries_;
};

// The live file and the rotated siblings of `path` (names starting with its
// base name followed by '.' or '-', not ending in .tmp), keyed; `header` is
// the line a file of this format starts with. Candidates without a complete
// record are left out (nothing to ship yet). Oldest first, the live file last.
[[nodiscard]] std::vector<Candidate> list_candidates(const std::string &path, const std::string &header,
                                                     KeyCache &cache);

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
