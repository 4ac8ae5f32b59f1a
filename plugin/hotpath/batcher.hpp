// The hand-off policy: everything that moves records from the calling
// threads' stages into spdlog's queue, and decides when.
//
// - add(): a hook call formats its record into its thread's stage; once the
//   stage holds kBatchRecords records or kBatchBytes bytes for a file (fewer
//   for a queue_size under 1,024) the same call hands the batch off: it takes
//   the file's lane lock shared, waits for room in admission (with
//   overflow = block, until overflow_timeout) without holding its stage, and
//   posts the batch; refused, the batch is counted dropped_overflow. Posting
//   copies nothing: the stage's buffer is swapped with an empty one from the
//   BatchPool and the queue carries a pointer (see batch_pool.hpp).
// - Records of threads that went quiet are collected, under the lane lock
//   held exclusive, from every stage into one batch per file: by the flusher
//   (when the queue has room, or after two intervals without; at most one such
//   batch queued per file), by `stats`, by a reopen and by unload. A busy
//   stage's buffer is swapped into the batch, a quiet one's records copied.
// - spdlog's queue has a slot for every batch admission can let in plus
//   kControlSlotsPerFile per file, so posting never blocks; batches are posted
//   to the pool directly, so a failure is counted record by record here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>

#include "admission.hpp"
#include "batch_pool.hpp"
#include "counters.hpp"
#include "diagnostics.hpp"
#include "handoff_lock.hpp"
#include "log_file_sink.hpp"
#include "mtalog_options.hpp"
#include "staging.hpp"

namespace mtalog {

// The asynchronous logger that carries one file's batches to `sinks`, which
// must be exactly one LogFileSink (a second sink would return each batch to
// the pool twice: batch_pool.hpp describes the message); throws
// std::invalid_argument otherwise.
std::shared_ptr<spdlog::async_logger> make_batch_logger(const std::string &name, std::vector<spdlog::sink_ptr> sinks,
                                                        std::shared_ptr<spdlog::details::thread_pool> pool);

class Batcher {
public:
    using Deadline = std::chrono::steady_clock::time_point;
    // Per file: a flusher batch and a flush, a reopen's batch and its marker,
    // unload's batch and its flush (each at most one queued at a time), and
    // spare ones.
    static constexpr std::size_t kControlSlotsPerFile = 8;

    // One file, as the batcher sees it.
    struct Lane {
        std::size_t index = 0; // in each stage
        FileCounters *counters = nullptr;
        spdlog::async_logger *logger = nullptr;
        const LogFileSink *sink = nullptr;
        // Shared by a thread handing off its own batch; exclusive while a
        // collector moves every thread's staged records into one batch, so
        // no thread's later batch overtakes its records in that one, and a
        // reopen's marker comes after every batch being posted when it began.
        HandoffLock handoff;
        std::uint64_t collected_posted = 0; // kCollectedLevel batches queued (handoff exclusive)
        unsigned collect_skips = 0;         // flusher ticks without room (handoff exclusive)
        std::uint64_t flushes_posted = 0;   // flusher thread only
    };

    Batcher(const mtacfg::Settings &settings, const Diagnostics &diag);
    Batcher(const Batcher &) = delete;
    Batcher &operator=(const Batcher &) = delete;

    [[nodiscard]] Admission *admission() noexcept { return &admission_; }
    [[nodiscard]] const BatchPool &batches() const noexcept { return batches_; }
    // Slots spdlog's queue needs for `files` files, so that posting never blocks.
    [[nodiscard]] std::size_t queue_slots(std::size_t files) const noexcept;
    void attach(std::shared_ptr<spdlog::details::thread_pool> pool) noexcept { pool_ = std::move(pool); }
    // Drops the batcher's reference to the pool (the instance drops the
    // last, which drains the queue and joins the writer).
    void detach() noexcept { pool_.reset(); }
    // The rate limit of internal-error reports, shared with the instance.
    [[nodiscard]] RateLimit &error_limit() noexcept { return error_limit_; }

    // The hook path: `format(lines, cache)` appends one record (without its
    // '\n') to the calling thread's stage; it may throw (counted).
    template <typename Format>
    void add(Lane &lane, Format &&format);

    // Each flush_interval: quiet threads' records (unless a thread holds the
    // lane), then a flush if the last one is done.
    void flusher_tick(Lane &lane);
    // Once per flush_interval, after every lane's tick: frees the pool's idle
    // batches if none was taken since the last round.
    void flusher_round_done() noexcept { batches_.trim_if_unused(); }
    // For `stats`: the records staged so far, as the flusher would.
    void collect_for_stats(Lane &lane);
    // For a reopen, with lane.handoff held exclusive: every staged record,
    // room or not, before the marker.
    void collect_all(Lane &lane);
    // For unload (no hook call runs): every staged record, and what could
    // not be collected counted as dropped_internal.
    void drain_for_unload(Lane &lane);
    // A flush (level off) or a reopen marker.
    void post_marker(Lane &lane, spdlog::level::level_enum level);

private:
    // A calling thread posts its own full batch, with its stage locked on
    // entry and on return, in three steps: (1) the lane's hand-off lock,
    // shared (a collector holding it exclusive may take the stage's records
    // meanwhile: the stage is unlocked while waiting, and nothing is posted
    // if they are gone); (2) room in admission, waited for without the stage
    // (only this thread adds to its records, and no collector of the lane
    // passes the shared lock, so they stay put); (3) the records swapped into
    // a pooled batch and queued. Records refused at (1) or (2), or lost at
    // (3) for want of memory, are counted, never silently dropped.
    void hand_off_own(std::unique_lock<std::mutex> &stage_lock, Staging::Stage &stage, Lane &lane);
    // Moves every stage's records for the lane into `batch` (taken from the
    // pool at the first record found); returns how many.
    std::size_t collect(Lane &lane, BatchPtr &batch, bool trim);
    bool collect_and_queue(Lane &lane, spdlog::level::level_enum level, bool trim);
    void collect_quiet_records(Lane &lane, bool trim);
    // Posts `batch` (none: the pool could not lend one), counting its records
    // dropped_internal when it cannot.
    bool queue(Lane &lane, BatchPtr batch, std::size_t records, std::size_t units, spdlog::level::level_enum level);
    void count_refused(const Lane &lane, std::size_t records);
    void count_format_error(const Lane &lane, const std::exception &e);
    [[nodiscard]] Deadline deadline() const noexcept;

    const mtacfg::Settings &settings_;
    const Diagnostics &diag_;
    Admission admission_;
    Staging staging_;
    std::size_t batch_records_;
    std::size_t batch_bytes_;
    BatchPool batches_;
    std::shared_ptr<spdlog::details::thread_pool> pool_;
    RateLimit error_limit_;
    RateLimit overflow_limit_;
};

template <typename Format>
void Batcher::add(Lane &lane, Format &&format)
{
    Staging::Stage *made = nullptr;
    try {
        made = &staging_.local();
    } catch (const std::bad_alloc &e) { // this thread's first record, and no memory for its stage
        count_format_error(lane, e);
        return;
    }
    Staging::Stage &stage = *made;
    std::unique_lock lock(stage.mutex);
    Buffer &lines = stage.lines[lane.index];
    const std::size_t before = lines.size();
    try {
        format(lines, stage.cache);
        lines.push_back('\n');
    } catch (const std::exception &e) {
        lines.resize(before); // keep the batch whole lines only
        count_format_error(lane, e);
        return;
    }
    if (++stage.records[lane.index] >= batch_records_ || lines.size() >= batch_bytes_)
        hand_off_own(lock, stage, lane);
}

} // namespace mtalog
