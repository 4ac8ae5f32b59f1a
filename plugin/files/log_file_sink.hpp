// The spdlog sink behind every mtalog file. It owns its fd (spdlog's file
// sinks cannot reopen) and runs only on the instance's writer thread, under
// base_sink's mutex, so every decision below happens in queue order.
//
// - Messages are batches of whole lines (from per-thread staging), passed by
//   pointer (batch_pool.hpp); they are buffered (a batch that arrives while
//   the buffer is empty becomes the buffer: no copy) and written with as few
//   write(2) calls as possible (64 KiB or more buffered, or a flush every
//   flush_interval). Taking a batch off the queue gives its admission units
//   back (the poster's count, carried in the message's source line field). The level tells who posted it:
//   kBatchLevel a calling thread, kCollectedLevel the flusher (counted in
//   collected_done(), so the flusher keeps at most one queued), kFinalLevel
//   a reopen or unload; kReopenLevel is a reopen marker.
// - Reopen (log_reopen) travels through the queue as a message at
//   kReopenLevel: records accepted before it go to the old file, later ones
//   to the new. The new file is opened before the old one is closed; if it
//   cannot be, the old one stays in use. If the old file fails, the new one
//   waits open (switch_fd_) while the records before the reopen wait for
//   the old one, up to what is left of the caller's overflow_timeout; then
//   they are moved to the new file, counted (crossed_reopen).
// - Every reopen_check_interval the sink checks that the path still names
//   its file; if the file was moved or deleted without a reopen, it reopens
//   and counts the records that went to the detached file.
// - Built-in rotation by size and by time, retention, and compression
//   handed to the Compressor thread. If the rotated file's path cannot be
//   created again, the rename is kept and the creation retried at each
//   housekeeping; that is a rotation error, never a missed reopen.
// - A header line (CSV) goes first into every new or empty file; one the disk
//   refused is written before the next record.
// - A failed write (ENOSPC, EIO) never leaves a partial line: a record the
//   failure cut is truncated back off the file and kept whole in memory (or,
//   if the file no longer ends where this sink's writes left it, completed in
//   place; given up at a reopen's deadline or at shutdown, its start is cut
//   off where the file still ends with it, and left, reported, where another
//   writer appended after it). With overflow=block
//   the writer retries (stalling the queue, so hook calls wait up to
//   overflow_timeout and then drop, counted); with overflow=drop it drops
//   the buffered records (counted) and goes on. From begin_shutdown() on,
//   retrying ends at one deadline for all batches, so unloading takes
//   overflow_timeout once, whatever the queue holds; what it drops is
//   counted record by record, and a record that still cannot be completed is
//   cut back off the file.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>

#include "admission.hpp"
#include "compressor.hpp"
#include "counters.hpp"
#include "diagnostics.hpp"
#include "log_file.hpp"
#include "mtalog_options.hpp"

namespace mtalog {

struct SinkOptions {
    std::string path;
    unsigned mode = 0640;
    std::string header; // written first in every new or empty file ("" for none)
    mtacfg::Overflow overflow = mtacfg::Overflow::block;
    // How long a reopen keeps the records accepted before it for an old file
    // that fails, before they go to the new one (counted).
    std::chrono::microseconds overflow_timeout{1000000};
    std::chrono::microseconds reopen_check_interval{5000000};
    std::uint64_t rotate_size = 0;
    mtacfg::RotateInterval rotate_interval = mtacfg::RotateInterval::none;
    bool rotate_utc = true;
    std::size_t rotate_keep = 7;
    mtacfg::Compression compress = mtacfg::Compression::none;
    bool follow_symlinks = false;
};

// Wall-clock seconds, injectable so tests can drive time rotation.
using WallClock = std::function<std::time_t()>;

class LogFileSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    static constexpr std::size_t kBufferLimit = 64 * 1024;
    static constexpr spdlog::level::level_enum kBatchLevel = spdlog::level::info;
    static constexpr spdlog::level::level_enum kCollectedLevel = spdlog::level::warn;
    static constexpr spdlog::level::level_enum kFinalLevel = spdlog::level::err;
    static constexpr spdlog::level::level_enum kReopenLevel = spdlog::level::critical;

    // `admission` (may be NULL) is released for every record taken off the
    // queue; `compressor` (may be NULL) gets rotated files.
    LogFileSink(SinkOptions options, FileCounters &counters, const Diagnostics &diag, Admission *admission,
                Compressor *compressor, WallClock clock = {});
    ~LogFileSink() override;

    // Opens the file (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC; a created file gets
    // exactly the mode). Returns an error text on failure.
    std::optional<std::string> open();

    [[nodiscard]] std::uint64_t reopens_done() const noexcept { return reopens_done_.load(); }
    // Reopen markers the writer has begun (taken off the queue).
    [[nodiscard]] std::uint64_t reopens_started() const noexcept { return reopens_started_.load(); }
    // Waits until more than `seen` reopens are done, or `deadline`.
    bool wait_for_reopen(std::uint64_t seen, std::chrono::steady_clock::time_point deadline);
    [[nodiscard]] std::uint64_t collected_done() const noexcept { return collected_done_.load(); }
    [[nodiscard]] std::uint64_t flushes_done() const noexcept { return flushes_done_.load(); }

    // From here on, write retries end at `deadline`, for every batch.
    void begin_shutdown(std::chrono::steady_clock::time_point deadline) noexcept;
    // After the writer thread is gone: last write attempt, then close. What
    // cannot be written is counted as dropped and no partial line remains.
    void finish();

    [[nodiscard]] const std::string &path() const noexcept { return options_.path; }

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override;
    void flush_() override;

private:
    // All below run with the sink mutex held.
    bool write_out();           // false when bytes remain unwritten
    void write_or_wait();       // write_out, then the overflow policy on failure
    void take_batch(const spdlog::details::log_msg &msg);
    void drop_buffered();       // drops the old file's buffered records but a partly written one
    void housekeeping();        // identity check and time rotation, when due
    // `budget`: how long the old file's records may wait for it (what is
    // left of the log_reopen caller's overflow_timeout).
    void reopen(std::chrono::steady_clock::duration budget);
    void complete_switch();     // the reopen's new file becomes the current one
    void give_up_old_file(bool now = false); // past the budget (or now): the old file's records go to the new one
    void signal_reopens(std::uint64_t markers);
    void erase_front(std::size_t bytes); // drops buffer_'s first bytes (the old file's share shrinks)
    void rotate();
    void rotate_keeping_records() noexcept; // rotate(), an exception counted, not thrown
    void finish_rotation(int fd); // the rotated path exists again as `fd`
    // Counts a failed reopen or rotation and reports it (rate-limited).
    template <typename MakeMessage>
    void file_error(std::atomic<std::uint64_t> &counter, MakeMessage &&make_message)
    {
        counter.fetch_add(1, std::memory_order_relaxed);
        diag_.limited(reopen_error_limit_, EC_LOG_ERROR, std::forward<MakeMessage>(make_message));
    }
    static std::size_t count_newlines(const char *begin, const char *end) noexcept
    {
        return static_cast<std::size_t>(std::count(begin, end, '\n'));
    }
    void install(int fd);       // makes fd the current file (torn end, header, size, identity)
    void cut_back_partial() noexcept; // a record begun in the file and never completed: cut off, and forgotten
    void cut_torn_end(int fd) noexcept; // torn_tail(Torn::cut), counted and reported
    bool write_header();        // into the current file if it is empty; false if the disk refused it

    SinkOptions options_;
    FileCounters &counters_;
    const Diagnostics &diag_;
    Admission *admission_;
    Compressor *compressor_;
    WallClock clock_;
    const std::string header_line_; // the header with its '\n'; "" for none

    int fd_ = -1;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    std::uint64_t size_ = 0;              // bytes in the current file
    fmt::memory_buffer buffer_;           // bytes not yet written; may start mid-record
    std::size_t buffered_records_ = 0;    // newlines in buffer_
    std::size_t partial_written_ = 0;     // bytes of buffer_'s first record already in the file
                                          // (only when cutting them back failed)
    std::uint64_t partial_end_ = 0;       // the file's size just after them (0: not known)
    // A reopen whose old file fails: the new file waits open while the
    // first switch_at_ bytes of buffer_ (accepted before the reopen) wait for
    // the old one, up to switch_deadline_; later bytes are the new file's.
    int switch_fd_ = -1;
    std::size_t switch_at_ = 0;
    std::chrono::steady_clock::time_point switch_deadline_{};
    std::uint64_t switch_markers_ = 0;    // reopen markers done once the switch is
    bool failing_ = false;                // the last write failed
    bool header_pending_ = false;         // the file is empty and still needs its header
    std::string rotated_to_;              // a rotation renamed the file but could not create it again
    std::chrono::steady_clock::time_point last_retry_{};
    std::chrono::steady_clock::time_point last_check_{};
    std::uint64_t written_since_check_ = 0;
    std::time_t next_rotation_ = 0;

    std::atomic<std::chrono::steady_clock::rep> shutdown_deadline_{0}; // 0: not shutting down
    std::atomic<std::uint64_t> reopens_started_{0};
    std::atomic<std::uint64_t> reopens_done_{0};
    std::atomic<std::uint64_t> collected_done_{0};
    std::atomic<std::uint64_t> flushes_done_{0};
    std::mutex reopen_wait_mutex_;
    std::condition_variable reopen_done_cv_;
    RateLimit write_error_limit_;
    RateLimit reopen_error_limit_;
};

} // namespace mtalog
