// What both writers of log files share: mtalog's sink (behind the async
// queue) and the Exim adapter's synchronous SyncFile. Opening a log file
// safely, and writing the header line of an empty file without leaving part
// of it behind.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mtalog {

// Opens `path` for appending; a file it creates gets exactly `mode` whatever
// the umask. Unless `follow_symlinks`, a symbolic link is refused (ELOOP).
// Returns the fd, or -1 with errno set.
int open_log_file(const std::string &path, unsigned mode, bool follow_symlinks) noexcept;

struct HeaderWrite {
    std::size_t written = 0; // bytes written: the whole line, or 0
    int error = 0;           // errno when the line could not be written (nothing of it is left)
};

// Writes `line` (ending in '\n') into the file open as `fd` if the file is
// empty; a file with anything in it gets nothing. A line cut short by a full
// disk is taken back off the file.
HeaderWrite write_header_if_empty(int fd, std::string_view line) noexcept;

struct TornTail {
    std::size_t torn = 0; // bytes after the last newline: a record a crash cut short
    std::size_t cut = 0;  // of them, cut off the end
    int error = 0;       // errno when the end could not be read or cut (nothing changed)
    std::string start;   // the first bytes of what was cut (at most kTornSample)
};
inline constexpr std::size_t kTornSample = 120;

// A file that does not end in a newline ends in a record a crash cut short
// (a write(2) the kernel completed only in part when the writer died).
// Finds, and with Torn::cut cuts off through `fd`, the bytes after the
// file's last newline (all of them when it has none), reading the file
// through a descriptor of its own opened at `path`, so the next record
// starts a line of its own. Only for a
// file no one else is writing: another writer's record in progress would
// look the same. (docs/operations.md: why cut, not end it with a newline.)
enum class Torn { find, cut };
TornTail torn_tail(int fd, const std::string &path, Torn what);

struct WriteResult {
    std::size_t done = 0; // bytes written
    int error = 0;        // errno of the call that stopped short (EIO for a write of 0), or 0
};

// write(2) until all of `data` is written or a call fails (EINTR is retried).
WriteResult write_all(int fd, const char *data, std::size_t size) noexcept;

} // namespace mtalog
