#include "log_file_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "batch_pool.hpp"
#include "rotation.hpp"

namespace mtalog {

namespace {

constexpr std::chrono::milliseconds kRetryPause{100};  // between write retries with overflow=block
constexpr std::chrono::milliseconds kDropRetry{1000};  // between write attempts with overflow=drop

} // namespace

LogFileSink::LogFileSink(SinkOptions options, FileCounters &counters, const Diagnostics &diag, Admission *admission,
                         Compressor *compressor, WallClock clock)
    : options_(std::move(options)), counters_(counters), diag_(diag), admission_(admission), compressor_(compressor),
      clock_(clock ? std::move(clock) : WallClock([] { return std::time(nullptr); })),
      header_line_(options_.header.empty() ? std::string() : options_.header + "\n")
{
}

LogFileSink::~LogFileSink() { finish(); }

void LogFileSink::begin_shutdown(std::chrono::steady_clock::time_point deadline) noexcept
{
    shutdown_deadline_.store(std::max<std::chrono::steady_clock::rep>(1, deadline.time_since_epoch().count()));
}

void LogFileSink::sink_it_(const spdlog::details::log_msg &msg)
{
    // Nothing may escape to spdlog: its error handler cannot know how many
    // records a message held. Every record is counted here instead.
    try {
        if (msg.level == kReopenLevel) {
            reopens_started_.fetch_add(1);
            // What is left of the caller's overflow_timeout (clamped: a
            // stepped clock can shorten or lengthen it within its bounds).
            const auto queued = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                spdlog::log_clock::now() - msg.time);
            const auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(options_.overflow_timeout);
            reopen(std::clamp(limit - queued, std::chrono::steady_clock::duration::zero(), limit));
        } else {
            take_batch(msg);
        }
    } catch (const std::exception &e) {
        diag_.limited(write_error_limit_, EC_LOG_ERROR, [&] { return "writer: " + std::string(e.what()); });
    }
    if (msg.level == kReopenLevel) {
        // Done once the new file is the current one: while the old file's
        // records wait for it, log_reopen's caller waits too (up to
        // overflow_timeout, its own limit).
        if (switch_fd_ >= 0)
            ++switch_markers_;
        else
            signal_reopens(1);
    } else if (msg.level == kCollectedLevel) {
        collected_done_.fetch_add(1);
    }
}

void LogFileSink::take_batch(const spdlog::details::log_msg &msg)
{
    // A message carries a Batch (owned from here: it goes back to its pool
    // however this ends) or, from tests, the lines themselves; either way
    // whole lines, each ending in '\n'.
    BatchPtr batch = BatchPool::from(msg);
    const char *begin = batch ? batch->lines.data() : msg.payload.data();
    const char *end = begin + (batch ? batch->lines.size() : msg.payload.size());
    const std::size_t records = count_newlines(begin, end);
    if (admission_ != nullptr)
        admission_->release(static_cast<std::size_t>(msg.source.line));
    // (While a reopen waits for the old file, new records are the new
    // file's: they wait, at most overflow_timeout.)
    if (failing_ && options_.overflow == mtacfg::Overflow::drop && switch_fd_ < 0 &&
        std::chrono::steady_clock::now() - last_retry_ < kDropRetry) {
        counters_.dropped_write_error.fetch_add(records, std::memory_order_relaxed);
        return; // the file is failing: do not pile records up in memory
    }
    if (next_rotation_ != 0 && clock_() >= next_rotation_)
        rotate_keeping_records(); // records after the boundary start the new file
    if (batch && buffer_.size() == 0) {
        swap_buffers(buffer_, batch->lines); // the batch's buffer becomes ours; ours goes to the pool
    } else {
        try {
            buffer_.append(begin, end); // all or nothing
        } catch (const std::bad_alloc &) {
            counters_.dropped_internal.fetch_add(records, std::memory_order_relaxed);
            diag_.limited(write_error_limit_, EC_LOG_ERROR, [&] {
                return "out of memory: " + std::to_string(records) + " records for \"" + options_.path + "\" dropped";
            });
            return;
        }
    }
    buffered_records_ += records;
    if (buffer_.size() >= kBufferLimit)
        write_or_wait();
}

void LogFileSink::flush_()
{
    try {
        give_up_old_file();
        housekeeping();
        if (buffer_.size() > 0)
            write_or_wait();
    } catch (const std::exception &e) {
        diag_.limited(write_error_limit_, EC_LOG_ERROR, [&] { return "writer: " + std::string(e.what()); });
    }
    flushes_done_.fetch_add(1);
}

void LogFileSink::housekeeping()
{
    const auto now = std::chrono::steady_clock::now();
    if (switch_fd_ >= 0)
        return; // a reopen is under way: nothing else moves the file until it is done
    if (!rotated_to_.empty()) {
        // A rotation is waiting to create the file again; the path is
        // missing on purpose, so the identity check has nothing to say.
        rotate();
        last_check_ = now;
        written_since_check_ = 0;
    } else if (options_.reopen_check_interval.count() > 0 && now - last_check_ >= options_.reopen_check_interval) {
        last_check_ = now;
        struct stat st {};
        const bool gone = ::stat(options_.path.c_str(), &st) != 0;
        if (gone || st.st_dev != dev_ || st.st_ino != ino_) {
            const std::uint64_t detached = written_since_check_;
            counters_.missed_reopens.fetch_add(1, std::memory_order_relaxed);
            counters_.detached_records.fetch_add(detached, std::memory_order_relaxed);
            diag_.report(EC_LOG_WARNING, "log file \"" + options_.path + "\" was " + (gone ? "deleted" : "replaced") +
                                             " without a reopen; reopened it (" + std::to_string(detached) +
                                             " records written since the last check went to the old file)");
            reopen(options_.overflow_timeout);
        }
        written_since_check_ = 0;
    }
    if (next_rotation_ != 0 && clock_() >= next_rotation_)
        rotate();
}

bool LogFileSink::write_out()
{
    for (;;) {
        // While a reopen waits, only the records accepted before it go to
        // the open (old) file; once they are written, the new file takes over.
        const std::size_t share = switch_fd_ >= 0 ? switch_at_ : buffer_.size();
        if (share == 0) {
            if (switch_fd_ < 0)
                return true;
            complete_switch();
            continue;
        }
        if (!write_header()) {
            counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
            failing_ = true;
            last_retry_ = std::chrono::steady_clock::now();
            return false;
        }
        const char *data = buffer_.data();
        const WriteResult wrote = fd_ >= 0 ? write_all(fd_, data, share) : WriteResult{0, EBADF};
        const std::size_t done = wrote.done;
        const int error = wrote.error;
        const std::size_t whole = count_newlines(data, data + done);
        counters_.written.fetch_add(whole, std::memory_order_relaxed);
        counters_.bytes.fetch_add(done, std::memory_order_relaxed);
        written_since_check_ += whole;
        size_ += done;
        buffered_records_ -= whole;
        if (error == 0) {
            erase_front(share);
            partial_written_ = 0;
            if (failing_)
                diag_.report(EC_LOG_NOTICE, "writing to \"" + options_.path + "\" works again");
            failing_ = false;
            if (switch_fd_ >= 0)
                continue; // the old file has its records: switch, and write the rest to the new one
            if (options_.rotate_size != 0 && size_ >= options_.rotate_size)
                rotate();
            return true;
        }
        // A record cut by the failure is taken back off the file (when the
        // file ends where this write left it, so nobody else's bytes are cut)
        // and kept whole in the buffer. Only if that fails is its rest kept,
        // to complete the record in place later.
        const char *boundary = data;
        for (const char *p = data + done; p > data; --p)
            if (p[-1] == '\n') {
                boundary = p;
                break;
            }
        const std::size_t cut = static_cast<std::size_t>(data + done - boundary);
        std::size_t keep_from = static_cast<std::size_t>(boundary - data);
        if (boundary > data)
            partial_written_ = 0; // a record left partial before is whole now: only `cut` bytes are partial
        if (cut > 0) {
            struct stat st {};
            const bool known = ::fstat(fd_, &st) == 0;
            if (partial_written_ == 0 && known && static_cast<std::uint64_t>(st.st_size) == size_ &&
                ::ftruncate(fd_, st.st_size - static_cast<off_t>(cut)) == 0) {
                size_ -= cut;
                counters_.bytes.fetch_sub(cut, std::memory_order_relaxed);
            } else {
                // Where this sink's bytes of the record end: the descriptor's
                // offset after the write (O_APPEND), not the file's size,
                // which another writer may have moved on. A record continued
                // elsewhere than right after its start is never cut.
                const off_t ours = ::lseek(fd_, 0, SEEK_CUR);
                const bool follows = partial_written_ == 0 ||
                                     (partial_end_ != 0 && ours >= 0 &&
                                      static_cast<std::uint64_t>(ours) - cut == partial_end_);
                keep_from = done;
                partial_written_ += cut;
                partial_end_ = follows && ours > 0 ? static_cast<std::uint64_t>(ours) : 0;
            }
        }
        erase_front(keep_from);
        counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
        failing_ = true;
        last_retry_ = std::chrono::steady_clock::now();
        diag_.limited(write_error_limit_, EC_LOG_ERROR, [&] {
            return "write to \"" + options_.path + "\" failed: " + std::strerror(error) + "; " +
                   (options_.overflow == mtacfg::Overflow::block ? "retrying (overflow = block)"
                                                                 : "dropping records until it works (overflow = drop)");
        });
        return false;
    }
}

void LogFileSink::cut_back_partial() noexcept
{
    if (partial_written_ == 0)
        return;
    // Only where the file still ends with it: bytes another writer added
    // after it are not ours to cut (the fragment then stays, reported).
    struct stat st {};
    const bool ends_with_it = partial_end_ >= partial_written_ && ::fstat(fd_, &st) == 0 &&
                              static_cast<std::uint64_t>(st.st_size) == partial_end_;
    if (ends_with_it && ::ftruncate(fd_, static_cast<off_t>(partial_end_ - partial_written_)) == 0) {
        size_ -= std::min<std::uint64_t>(size_, partial_written_);
        counters_.bytes.fetch_sub(partial_written_, std::memory_order_relaxed);
    } else {
        try { // once per give-up or shutdown: not behind the write errors' rate limit
            diag_.report(EC_LOG_ERROR, "\"" + options_.path + "\" keeps " + std::to_string(partial_written_) +
                                           " bytes of a record it could not complete: the file does not end with "
                                           "them, so they are not cut (another writer appended after them)");
        } catch (const std::exception &) {
        }
    }
    partial_written_ = 0;
}

void LogFileSink::erase_front(std::size_t bytes)
{
    // In place: no allocation, so nothing can fail here.
    std::memmove(buffer_.data(), buffer_.data() + bytes, buffer_.size() - bytes);
    buffer_.resize(buffer_.size() - bytes);
    switch_at_ -= std::min(switch_at_, bytes);
}

void LogFileSink::write_or_wait()
{
    if (write_out())
        return;
    if (options_.overflow == mtacfg::Overflow::drop) {
        drop_buffered();
        // The new file's records wait in memory while the old file completes
        // a record; not more than a buffer's worth.
        if (switch_fd_ >= 0 && buffer_.size() - switch_at_ >= kBufferLimit)
            give_up_old_file(true);
        return;
    }
    // overflow = block: hold the queue until the write works. Hook calls wait
    // for queue space up to overflow_timeout and then drop, counted. At
    // shutdown, give up at the one deadline begin_shutdown() set.
    for (;;) {
        auto pause = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kRetryPause);
        if (const auto at = shutdown_deadline_.load(); at != 0) {
            const auto deadline = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(at));
            const auto now = std::chrono::steady_clock::now();
            if (now >= deadline) {
                drop_buffered();
                return;
            }
            pause = std::min(pause, deadline - now);
        }
        std::this_thread::sleep_for(pause);
        give_up_old_file();
        if (write_out())
            return;
    }
}

void LogFileSink::drop_buffered()
{
    // The records for the open file go; a record already partly in it is
    // kept, to be completed later. While a reopen waits, the records after
    // it (the new file's) stay.
    const std::size_t share = switch_fd_ >= 0 ? switch_at_ : buffer_.size();
    char *data = buffer_.data();
    std::size_t keep = 0;
    if (partial_written_ > 0) {
        const char *end = std::find(data, data + share, '\n');
        keep = end == data + share ? share : static_cast<std::size_t>(end - data) + 1;
    }
    const std::size_t dropped = count_newlines(data + keep, data + share);
    counters_.dropped_write_error.fetch_add(dropped, std::memory_order_relaxed);
    buffered_records_ -= dropped;
    std::memmove(data + keep, data + share, buffer_.size() - share);
    buffer_.resize(buffer_.size() - (share - keep));
    if (switch_fd_ < 0)
        return;
    switch_at_ = keep;
    if (switch_at_ == 0)
        complete_switch(); // nothing left for the old file
}

void LogFileSink::rotate_keeping_records() noexcept
{
    // A failure inside the rotation (out of memory) must not take the
    // batch being written with it: it is counted, and the records go on to
    // the file that is open.
    try {
        rotate();
    } catch (const std::exception &e) {
        counters_.rotation_errors.fetch_add(1, std::memory_order_relaxed);
        diag_.limited(reopen_error_limit_, EC_LOG_ERROR,
                      [&] { return "cannot rotate \"" + options_.path + "\": " + std::string(e.what()); });
    }
}

void LogFileSink::rotate()
{
    if (switch_fd_ >= 0)
        return; // a reopen is under way: it moves the file
    if (!rotated_to_.empty()) {
        // Renamed already; only the new file is missing. A record half in
        // the renamed file is completed there first.
        if (!write_out() && partial_written_ > 0)
            return;
        const int fd = open_log_file(options_.path, options_.mode, options_.follow_symlinks);
        if (fd >= 0)
            finish_rotation(fd);
        return;
    }
    if (!write_out() && partial_written_ > 0)
        return; // a record is half in the file: rotate once it is complete
    const std::time_t now = clock_();
    next_rotation_ = next_rotation_time(now, options_.rotate_interval, options_.rotate_utc);
    std::string target;
    for (unsigned n = 0; n < 1000; ++n) {
        target = rotated_name(options_.path, now, options_.rotate_utc, n);
        std::error_code ec;
        if (!std::filesystem::exists(target, ec) && !std::filesystem::exists(target + ".gz", ec) &&
            !std::filesystem::exists(target + ".zst", ec))
            break;
    }
    if (::rename(options_.path.c_str(), target.c_str()) != 0) {
        const int error = errno;
        file_error(counters_.rotation_errors, [&] {
            return "cannot rotate \"" + options_.path + "\" to \"" + target + "\": " + std::strerror(error);
        });
        return;
    }
    rotated_to_ = target;
    const int fd = open_log_file(options_.path, options_.mode, options_.follow_symlinks);
    if (fd < 0) {
        const int error = errno;
        file_error(counters_.rotation_errors, [&] {
            return "rotated \"" + options_.path + "\" but cannot create it again: " + std::strerror(error) +
                   "; still writing to \"" + target + "\" and trying again every flush_interval";
        });
        return; // the fd still names the renamed file
    }
    finish_rotation(fd);
}

void LogFileSink::finish_rotation(int fd)
{
    const std::string target = std::move(rotated_to_);
    rotated_to_.clear();
    install(fd);
    counters_.rotations.fetch_add(1, std::memory_order_relaxed);
    if (compressor_ != nullptr) { // retention follows the compression, on its thread
        compressor_->submit(target, &counters_, options_.path, options_.rotate_keep);
        return;
    }
    for (const auto &deleted : apply_retention(options_.path, options_.rotate_keep))
        diag_.report(EC_LOG_DEBUG, "rotate_keep: deleted \"" + deleted + "\"");
}

void LogFileSink::finish()
{
    std::lock_guard lock(mutex_);
    if (fd_ < 0)
        return;
    if (switch_fd_ >= 0 && !write_out()) {
        try {
            give_up_old_file(true); // shutting down: the old file's records go to the new file now
        } catch (const std::exception &) {
            ::close(std::exchange(switch_fd_, -1)); // (out of memory) what is left is counted below
            signal_reopens(std::exchange(switch_markers_, 0));
        }
    }
    if (!write_out()) {
        // Still failing at shutdown: what is left is lost; count it, and cut
        // a partly written record back off the file so no partial line stays.
        cut_back_partial();
        counters_.dropped_write_error.fetch_add(buffered_records_, std::memory_order_relaxed);
        diag_.report(EC_LOG_ERROR, "shutting down with \"" + options_.path + "\" still failing: " +
                                       std::to_string(buffered_records_) + " records dropped");
        buffer_.clear();
        buffered_records_ = 0;
    }
    ::close(fd_);
    fd_ = -1;
}

} // namespace mtalog
