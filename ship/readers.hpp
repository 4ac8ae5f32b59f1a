// Reading a file's records whatever its encoding: plain, gzip or zstd.
// Offsets are into the decoded bytes, so a record keeps its offset when its
// file is compressed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>

namespace mtalog::ship {

enum class Encoding { plain, gzip, zstd };

[[nodiscard]] Encoding encoding_of(const std::string &name); // by the name's ending

class Reader {
public:
    virtual ~Reader() = default;
    // Reads up to `n` bytes at the current position; 0 at the end (for now,
    // for a plain file that grows), -1 with `error` set on failure.
    virtual long read(char *buf, std::size_t n) = 0;
    // Bytes consumed so far.
    [[nodiscard]] virtual std::uint64_t position() const = 0;
    // Skips forward to `offset`, or back to it (a plain file seeks; a
    // compressed one decodes again from the start); false if the data ends
    // before it.
    bool seek(std::uint64_t offset);
    // For a compressed file at its end: whether its data stopped before the
    // format's end (cut by a crash, or still being written). A plain file is
    // never truncated in this sense: it may grow.
    [[nodiscard]] virtual bool truncated() const { return false; }
    // A plain file's size now; nullopt for a compressed one.
    struct Now {
        std::uint64_t size = 0;
    };
    [[nodiscard]] virtual std::optional<Now> plain_now() const { return std::nullopt; }
    // Whether a plain file still holds `bytes` at `offset` (a writer may
    // have taken a partial line back and written on); true for a
    // compressed one.
    [[nodiscard]] virtual bool still_holds(std::uint64_t, std::string_view) const { return true; }
    // The opened file's device and inode.
    [[nodiscard]] virtual std::pair<dev_t, ino_t> identity() const = 0;
    std::string error;

protected:
    // Back to the start of the data.
    virtual bool rewind() = 0;
    // Moves straight to `offset` where the format allows (plain files).
    virtual bool jump(std::uint64_t) { return false; }
};

// Opens `name` (never through a symbolic link) as `encoding`; nullptr with
// `error` on failure.
[[nodiscard]] std::unique_ptr<Reader> open_reader(const std::string &name, Encoding encoding, std::string &error);

} // namespace mtalog::ship
