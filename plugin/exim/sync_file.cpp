#include "sync_file.hpp"

#include <cerrno>
#include <ctime>
#include <cstring>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include "escape.hpp"
#include "log_file.hpp"

namespace mtalog::exim {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

} // namespace

SyncFile::SyncFile(std::string path, unsigned mode, bool follow_symlinks, const std::string &header)
    : path_(std::move(path)), mode_(mode), follow_symlinks_(follow_symlinks),
      header_(header.empty() ? std::string() : header + "\n")
{
}

SyncFile::~SyncFile()
{
    if (fd_ >= 0)
        ::close(fd_);
}

std::optional<std::string> SyncFile::ensure_open()
{
    struct stat st {};
    if (fd_ >= 0 && ::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        return std::nullopt;
    // First use, or the file was moved or removed (logrotate): open the path anew.
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = open_log_file(path_, mode_, follow_symlinks_);
    if (fd_ < 0)
        return "cannot open " + path_ + ": " + errno_text(errno);
    if (::fstat(fd_, &st) != 0) {
        const int e = errno;
        ::close(fd_);
        fd_ = -1;
        return "cannot stat " + path_ + ": " + errno_text(e);
    }
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    ++opens_;
    header_pending_ = !header_.empty();
    torn_note_ = end_torn_end();
    return std::nullopt;
}

std::optional<std::string> SyncFile::end_torn_end()
{
    if (const TornTail first = torn_tail(fd_, path_, Torn::find); first.torn == 0) {
        if (first.error != 0) // as the module says it: the end could not be checked
            return path_ + ": cannot check its end for a record a crash cut short: " + std::strerror(first.error) +
                   " (the record was written)";
        return std::nullopt; // most opens: one read of one byte
    }
    // Other Exim processes append to this file at the same time: a record
    // one of them is writing right now looks like a torn one, and cutting
    // the file could destroy a record another finishes meanwhile. So, under
    // the file's lock (one process at a time does this), a fragment that has
    // not changed for 50 ms is taken for a crash's and ended with a newline:
    // one O_APPEND write, which the kernel orders after any write still in
    // progress. The fragment stays, as a line of its own.
    if (::flock(fd_, LOCK_EX) != 0)
        return std::nullopt;
    std::optional<std::string> note;
    struct stat before {};
    struct stat after {};
    const timespec pause{0, 50 * 1000 * 1000};
    const TornTail t = torn_tail(fd_, path_, Torn::find); // again, under the lock
    if (t.torn > 0 && ::fstat(fd_, &before) == 0 && ::nanosleep(&pause, nullptr) == 0 &&
        ::fstat(fd_, &after) == 0 && before.st_size == after.st_size && ::write(fd_, "\n", 1) == 1) {
        Buffer start;
        append_escaped(start, t.start, 0);
        note = path_ + " ended in " + std::to_string(t.torn) +
               " bytes of a record a crash cut short (no newline): ended with a newline, so that no new record is "
               "joined to it; it began: " +
               fmt::to_string(start) + " (the record was written)";
    }
    ::flock(fd_, LOCK_UN);
    return note;
}

std::optional<std::string> SyncFile::ensure_header()
{
    if (!header_pending_)
        return std::nullopt;
    // Several Exim processes may find the same new file: the lock makes
    // exactly one of them write the header, before any record. One the disk
    // refused (or cut short, then taken back) is tried again before the
    // next record, which is not written until it is.
    if (::flock(fd_, LOCK_EX) != 0)
        return "cannot lock " + path_ + ": " + errno_text(errno) + " (record not written)";
    const HeaderWrite done = write_header_if_empty(fd_, header_);
    ::flock(fd_, LOCK_UN);
    if (done.error != 0)
        return "cannot check or write the header line of " + path_ + ": " + errno_text(done.error) +
               " (record not written)";
    header_pending_ = false;
    return std::nullopt;
}

std::optional<std::string> SyncFile::append(std::string_view line)
{
    if (auto error = ensure_open())
        return error;
    if (auto error = ensure_header())
        return error;
    ssize_t n;
    do
        n = ::write(fd_, line.data(), line.size());
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(line.size()))
        return std::exchange(torn_note_, std::nullopt); // reported once, through Exim's logs
    const int e = n < 0 ? errno : ENOSPC;
    if (n > 0) {
        // Part of the line went in (a full disk): take it back off if no
        // other process has appended since, so the file keeps whole lines.
        const off_t end = ::lseek(fd_, 0, SEEK_CUR);
        struct stat st {};
        if (end >= n && ::fstat(fd_, &st) == 0 && st.st_size == end && ::ftruncate(fd_, end - n) == 0)
            return "cannot write " + path_ + ": " + errno_text(e) + " (record not written)";
        return "cannot write " + path_ + ": " + errno_text(e) + " (" + std::to_string(n) + " of " +
               std::to_string(line.size()) + " bytes written)";
    }
    return "cannot write " + path_ + ": " + errno_text(e) + " (record not written)";
}

} // namespace mtalog::exim
