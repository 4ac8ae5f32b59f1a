// LogFileSink: opening a file and making it the current one (a torn last
// record cut off, the header line of an empty file). The rest of the sink is
// in log_file_sink.cpp and log_file_sink_reopen.cpp.
#include "log_file_sink.hpp"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include "escape.hpp"
#include "log_file.hpp"
#include "rotation.hpp"

namespace mtalog {

std::optional<std::string> LogFileSink::open()
{
    std::lock_guard lock(mutex_);
    const int fd = open_log_file(options_.path, options_.mode, options_.follow_symlinks);
    if (fd < 0)
        return "cannot open log file \"" + options_.path + "\": " +
               (errno == ELOOP ? std::string("it is a symbolic link (follow_symlinks = off)") : std::strerror(errno));
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
    install(fd);
    last_check_ = std::chrono::steady_clock::now();
    next_rotation_ = next_rotation_time(clock_(), options_.rotate_interval, options_.rotate_utc);
    // Rotated files a crash left uncompressed are compressed now.
    if (compressor_ != nullptr)
        for (const auto &file : rotated_files(options_.path))
            if (!file.ends_with(".gz") && !file.ends_with(".zst"))
                compressor_->submit(file, &counters_);
    return std::nullopt;
}

void LogFileSink::install(int fd)
{
    cut_torn_end(fd);
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
        size_ = static_cast<std::uint64_t>(st.st_size);
    }
    const int old = fd_;
    fd_ = fd;
    if (old >= 0)
        ::close(old);
    written_since_check_ = 0;
    // A new file has not failed (drop mode would otherwise drop its first
    // second of records for the old file's failure).
    failing_ = false;
    last_retry_ = {};
    header_pending_ = !header_line_.empty();
    (void)write_header(); // if the disk refuses it, it goes before the next record
}

void LogFileSink::cut_torn_end(int fd) noexcept
try {
    const TornTail t = torn_tail(fd, options_.path, Torn::cut);
    if (t.cut > 0) {
        counters_.torn_records.fetch_add(1, std::memory_order_relaxed);
        Buffer start;
        append_escaped(start, t.start, 0);
        diag_.report(EC_LOG_WARNING, "\"" + options_.path + "\" ended in " + std::to_string(t.cut) +
                                         " bytes of a record a crash cut short (no newline): cut off, so that no new "
                                         "record is joined to it; it began: " +
                                         fmt::to_string(start));
    } else if (t.error != 0) {
        diag_.report(EC_LOG_WARNING, "cannot check the end of \"" + options_.path +
                                         "\" for a record a crash cut short: " +
                                         std::strerror(t.error));
    }
} catch (const std::exception &) {
    // Out of memory for the report: the file is as it was found, or cut.
}

bool LogFileSink::write_header()
{
    if (!header_pending_)
        return true;
    // A file with records in it (someone else's, or ours) gets no header.
    const HeaderWrite done = write_header_if_empty(fd_, header_line_);
    if (done.error == 0) {
        counters_.bytes.fetch_add(done.written, std::memory_order_relaxed);
        size_ += done.written;
        header_pending_ = false;
        return true;
    }
    const int error = done.error;
    diag_.limited(write_error_limit_, EC_LOG_ERROR, [&] {
        return "cannot write the header line of \"" + options_.path + "\": " + std::strerror(error) +
               "; it will be written before the first record";
    });
    return false;
}

} // namespace mtalog
