// The Exim adapter's writer: Exim forks a process per delivery, so each
// record is one write(2) on an O_APPEND file (atomic between processes), and
// a file is reopened when the inode at its path changes (Exim's own approach,
// so logrotate needs no signal). Opening and the header line are shared with
// the module's sink (plugin/files/log_file.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace mtalog::exim {

// A log file written synchronously: one write(2) per record on O_APPEND.
class SyncFile {
public:
    SyncFile(std::string path, unsigned mode, bool follow_symlinks, const std::string &header);
    SyncFile(const SyncFile &) = delete;
    SyncFile &operator=(const SyncFile &) = delete;
    ~SyncFile();

    // Appends `line` (ending in '\n') whole, or not at all; the error text
    // when it could not, or once, with the record written, the note that a
    // record a crash cut short was ended at the file's end when it was opened.
    std::optional<std::string> append(std::string_view line);

    // Reopens happened so far (the inode at the path changed, or the first open).
    [[nodiscard]] unsigned opens() const noexcept { return opens_; }

private:
    std::optional<std::string> ensure_open();
    std::optional<std::string> ensure_header(); // the header first, into an empty file only
    // A fragment a crash left at the end (no other process's write in
    // progress) ended with a newline; the note to report, if so.
    std::optional<std::string> end_torn_end();

    std::string path_;
    unsigned mode_;
    bool follow_symlinks_;
    std::string header_; // with its '\n'; "" for none
    int fd_ = -1;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    unsigned opens_ = 0;
    bool header_pending_ = false; // this file may still need its header
    std::optional<std::string> torn_note_; // to report with the next record written
};

} // namespace mtalog::exim
