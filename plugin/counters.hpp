// Per-file counters. Hook calls = accepted + dropped_overflow + (still
// staged); accepted = written + dropped_write_error + dropped_internal +
// (still queued or buffered).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace mtalog {

// name, meaning (docs/operations.md's counter table is checked against this list)
#define MTALOG_FILE_COUNTERS(X)                                                                         \
    X(accepted, "records taken in, not refused by the overflow policy (each then written or dropped below)") \
    X(written, "records written whole to the file")                                                     \
    X(dropped_overflow, "records refused because the queue stayed full (overflow policy)")               \
    X(dropped_write_error, "accepted records dropped because the file could not be written")             \
    X(dropped_internal, "records dropped by an internal error (out of memory)")                          \
    X(write_errors, "failed write(2) calls (ENOSPC, EIO, ...)")                                          \
    X(bytes, "bytes written, header lines included")                                                     \
    X(reopens, "reopens done for log_reopen")                                                            \
    X(reopen_errors, "reopens that failed (the old file stayed in use; a log_reopen out of memory counts one for every file)")                                 \
    X(missed_reopens, "times the path was found moved or deleted without a reopen, and reopened")        \
    X(detached_records, "records written to a moved or deleted file before that was noticed")            \
    X(crossed_reopen, "records accepted before a reopen moved to the new file: the old one still failed after overflow_timeout, at shutdown, or (overflow = drop) with a buffer of the new file's records waiting") \
    X(torn_records, "records a crash cut short found at the end of a file when it was opened, and cut off")   \
    X(rotations, "built-in rotations")                                                                   \
    X(rotation_errors, "built-in rotations that failed")                                                 \
    X(compressed, "rotated files compressed")                                                            \
    X(compress_errors, "rotated files that could not be compressed (left as they were)")

struct FileCounters {
#define MTALOG_COUNTER_FIELD(name, meaning) std::atomic<std::uint64_t> name{0};
    MTALOG_FILE_COUNTERS(MTALOG_COUNTER_FIELD)
#undef MTALOG_COUNTER_FIELD

    // "accepted=1 written=1 ..." on one line.
    [[nodiscard]] std::string render() const;
    // Adds another file's counters (for an instance's total).
    void add(const FileCounters &other) noexcept;
};

} // namespace mtalog
