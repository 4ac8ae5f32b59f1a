// LogFileSink: reopening (log_reopen, or a file found moved), and the
// switch a reopen waits for while the old file fails; the waits of
// log_reopen's caller. The rest of the sink is in log_file_sink.cpp.
#include "log_file_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include "log_file.hpp"

namespace mtalog {

bool LogFileSink::wait_for_reopen(std::uint64_t seen, std::chrono::steady_clock::time_point deadline)
{
    std::unique_lock lock(reopen_wait_mutex_);
    return reopen_done_cv_.wait_until(lock, deadline, [&] { return reopens_done_.load() > seen; });
}

void LogFileSink::signal_reopens(std::uint64_t markers)
{
    if (markers == 0)
        return;
    {
        std::lock_guard lock(reopen_wait_mutex_);
        reopens_done_.fetch_add(markers);
    }
    reopen_done_cv_.notify_all();
}

void LogFileSink::reopen(std::chrono::steady_clock::duration budget)
{
    const int fd = open_log_file(options_.path, options_.mode, options_.follow_symlinks);
    if (fd < 0) {
        const int error = errno;
        file_error(counters_.reopen_errors, [&] {
            return "cannot reopen log file \"" + options_.path + "\": " + std::strerror(error) +
                   "; still writing to the file opened before";
        });
        return;
    }
    if (switch_fd_ >= 0) {
        // An earlier reopen still waits for the old file: this one joins it,
        // and the switch goes to the file the path names now (records
        // between the two reopens go there too).
        ::close(std::exchange(switch_fd_, fd));
        return;
    }
    if (struct stat st {}; ::fstat(fd, &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
        // The same file (a reopen without a rotation): nothing to switch,
        // whether it can be written or not.
        ::close(fd);
        counters_.reopens.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // What is buffered belongs to the old file: written there first, then
    // the switch (write_out makes it).
    switch_fd_ = fd;
    switch_at_ = buffer_.size();
    switch_deadline_ = std::chrono::steady_clock::now() + budget;
    if (write_out())
        return;
    if (options_.overflow == mtacfg::Overflow::drop) {
        drop_buffered(); // the policy: what the failing file cannot take is dropped, counted
        return;
    }
    diag_.limited(reopen_error_limit_, EC_LOG_WARNING, [&] {
        return "reopening \"" + options_.path + "\": the old file fails; the " +
               std::to_string(count_newlines(buffer_.data(), buffer_.data() + switch_at_)) +
               " records accepted before the reopen wait for it (up to overflow_timeout), then go to the new file";
    });
}

void LogFileSink::complete_switch()
{
    // The waiting log_reopen callers are told however this ends.
    struct Signal {
        LogFileSink &sink;
        std::uint64_t markers;
        ~Signal() { sink.signal_reopens(markers); }
    } signal{*this, std::exchange(switch_markers_, 0)};
    const int fd = std::exchange(switch_fd_, -1);
    switch_at_ = 0;
    if (!rotated_to_.empty())
        finish_rotation(fd); // the path a rotation could not create exists again
    else
        install(fd);
    counters_.reopens.fetch_add(1, std::memory_order_relaxed);
}

void LogFileSink::give_up_old_file(bool now)
{
    if (switch_fd_ < 0 || (!now && std::chrono::steady_clock::now() < switch_deadline_))
        return;
    char *data = buffer_.data();
    if (partial_written_ > 0) {
        // A record begun in the old file: its rest cannot start the new one.
        // Its start is cut back off the old file where that file still ends
        // with it; the record is dropped, counted.
        cut_back_partial();
        const char *end = std::find(data, data + switch_at_, '\n');
        const bool whole = end != data + switch_at_;
        erase_front(whole ? static_cast<std::size_t>(end - data) + 1 : switch_at_);
        if (whole) {
            counters_.dropped_write_error.fetch_add(1, std::memory_order_relaxed);
            --buffered_records_;
        }
        data = buffer_.data();
    }
    const std::size_t moved = count_newlines(data, data + switch_at_);
    if (moved > 0) {
        std::string report = "the file \"" + options_.path + "\" was reopened but the old file still fails: the " +
                             std::to_string(moved) + " records accepted before the reopen go to the new file";
        counters_.crossed_reopen.fetch_add(moved, std::memory_order_relaxed);
        diag_.report(EC_LOG_ERROR, report);
    }
    switch_at_ = 0;
    complete_switch();
}

} // namespace mtalog
