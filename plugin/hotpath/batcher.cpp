#include "batcher.hpp"

#include <algorithm>
#include <new>
#include <shared_mutex>
#include <stdexcept>
#include <utility>

namespace mtalog {

namespace {

// Room for the record that takes a stage past its byte limit.
constexpr std::size_t kRecordSlack = 16 * 1024;

} // namespace

std::shared_ptr<spdlog::async_logger> make_batch_logger(const std::string &name, std::vector<spdlog::sink_ptr> sinks,
                                                        std::shared_ptr<spdlog::details::thread_pool> pool)
{
    if (sinks.size() != 1 || dynamic_cast<LogFileSink *>(sinks.front().get()) == nullptr)
        throw std::invalid_argument("a logger carrying batches needs exactly one LogFileSink, not " +
                                    std::to_string(sinks.size()) + " sink(s)");
    return std::make_shared<spdlog::async_logger>(name, sinks.begin(), sinks.end(), std::move(pool),
                                                  spdlog::async_overflow_policy::block);
}

Batcher::Batcher(const mtacfg::Settings &settings, const Diagnostics &diag)
    : settings_(settings), diag_(diag), admission_(settings.queue_size), staging_(settings.files.size()),
      // a smaller queue gets smaller batches, so that it still holds several
      batch_records_(std::min<std::size_t>(Staging::kBatchRecords, settings.queue_size)),
      batch_bytes_(batch_records_ * Admission::kBytesPerUnit),
      // a full stage is batch_bytes_ and one record more; twice that is kept
      batches_(batch_bytes_ + kRecordSlack, 2 * (batch_bytes_ + kRecordSlack))
{
}

std::size_t Batcher::queue_slots(std::size_t files) const noexcept
{
    // A calling thread's batch weighs at least batch_records_ units and is
    // admitted only while fewer than queue_size units wait.
    const std::size_t batch_slots = (settings_.queue_size + batch_records_ - 1) / batch_records_ + 1;
    return batch_slots + kControlSlotsPerFile * (files + 1);
}

Batcher::Deadline Batcher::deadline() const noexcept
{
    if (settings_.overflow == mtacfg::Overflow::drop)
        return Deadline{}; // long past: never wait
    return std::chrono::steady_clock::now() + settings_.overflow_timeout;
}

void Batcher::hand_off_own(std::unique_lock<std::mutex> &stage_lock, Staging::Stage &stage, Lane &lane)
{
    const Deadline until = deadline();
    const std::size_t index = lane.index;
    std::shared_lock handoff(lane.handoff, std::try_to_lock);
    if (!handoff.owns_lock()) {
        // A collector holds the lane (or waits for it) and may take this
        // stage's records: never wait for it holding the stage. Collectors
        // only move records while they hold it, so with overflow = drop this
        // waits for a memory copy.
        stage_lock.unlock();
        const bool drop = settings_.overflow == mtacfg::Overflow::drop;
        const bool got = drop || handoff.try_lock_until(until);
        if (drop)
            handoff.lock();
        stage_lock.lock();
        if (!got) {
            const std::uint32_t refused = std::exchange(stage.records[index], 0);
            stage.lines[index].clear();
            count_refused(lane, refused);
            return;
        }
    }
    const std::uint32_t records = stage.records[index];
    if (records == 0)
        return; // a collector took them
    // Wait for room without the stage: collectors of other files may visit
    // it meanwhile. This lane's records stay put: only this thread adds to
    // them, and no collector of this lane gets past the shared lock.
    const std::size_t units = Admission::weight(records, stage.lines[index].size());
    stage_lock.unlock();
    const bool admitted = admission_.admit(units, until);
    stage_lock.lock();
    stage.records[index] = 0;
    if (!admitted) {
        count_refused(lane, records);
    } else {
        BatchPtr batch;
        try {
            batch = batches_.take(true);
            swap_buffers(batch->lines, stage.lines[index]); // the stage gets the batch's empty buffer
        } catch (const std::bad_alloc &) {
            // No batch: queue() counts the records dropped, as for a failed post.
        }
        queue(lane, std::move(batch), records, units, LogFileSink::kBatchLevel);
    }
    stage.lines[index].clear();
}

std::size_t Batcher::collect(Lane &lane, BatchPtr &batch, bool trim)
{
    std::size_t records = 0;
    staging_.for_each([&](Staging::Stage &stage) {
        std::lock_guard lock(stage.mutex);
        Buffer &lines = stage.lines[lane.index];
        const std::uint32_t staged = stage.records[lane.index];
        if (staged > 0) {
            // A busy thread's buffer, when it is the first collected into
            // the batch, is swapped in, not copied under its stage's mutex
            // (the stage gets the batch's full-size buffer in exchange);
            // every other stage's records are appended (copied), so a quiet
            // thread keeps its small buffer. The batch is taken only once
            // there is something to collect.
            const bool busy = lines.size() > Staging::kKeptBytes;
            try {
                if (!batch)
                    batch = batches_.take(busy);
                if (busy && batch->lines.size() == 0) {
                    swap_buffers(batch->lines, lines);
                } else {
                    batch->lines.append(lines.data(), lines.data() + lines.size());
                }
            } catch (const std::bad_alloc &) {
                return; // they stay staged, for the next collection
            }
            records += staged;
            stage.records[lane.index] = 0;
            lines.clear();
        } else if (trim && lines.capacity() > Staging::kKeptBytes) {
            // A thread that went quiet after a burst gives its stage's
            // memory back; a busy thread keeps its buffer.
            lines = Buffer();
        }
    });
    return records;
}

bool Batcher::collect_and_queue(Lane &lane, spdlog::level::level_enum level, bool trim)
{
    BatchPtr batch;
    const std::size_t records = collect(lane, batch, trim);
    if (records == 0)
        return false;
    const std::size_t units = Admission::weight(records, batch->lines.size());
    admission_.force(units);
    return queue(lane, std::move(batch), records, units, level);
}

void Batcher::collect_quiet_records(Lane &lane, bool trim)
{
    // One collected batch per lane, and only once the previous one left the
    // queue, so collecting never fills the queue with small batches. While
    // the queue is full the records wait in their stages (nothing is refused
    // here: busy threads meet the overflow policy with their own batches),
    // but not for more than two flush intervals: then they go anyway.
    if (lane.sink->collected_done() < lane.collected_posted)
        return;
    if (admission_.waiting() >= admission_.capacity() && ++lane.collect_skips < 2)
        return;
    lane.collect_skips = 0;
    if (collect_and_queue(lane, LogFileSink::kCollectedLevel, trim))
        ++lane.collected_posted;
}

void Batcher::flusher_tick(Lane &lane)
{
    // A thread busy handing off its own batch is left alone.
    if (std::unique_lock handoff(lane.handoff, std::try_to_lock); handoff.owns_lock())
        collect_quiet_records(lane, true);
    if (lane.sink->flushes_done() >= lane.flushes_posted) {
        post_marker(lane, spdlog::level::off);
        ++lane.flushes_posted;
    }
}

void Batcher::collect_for_stats(Lane &lane)
{
    std::unique_lock handoff(lane.handoff, std::defer_lock);
    if (handoff.try_lock_until(std::chrono::steady_clock::now() + settings_.overflow_timeout))
        collect_quiet_records(lane, false);
}

void Batcher::collect_all(Lane &lane) { collect_and_queue(lane, LogFileSink::kFinalLevel, false); }

void Batcher::drain_for_unload(Lane &lane)
{
    try {
        std::unique_lock handoff(lane.handoff);
        collect_and_queue(lane, LogFileSink::kFinalLevel, false);
    } catch (const std::exception &e) {
        diag_.report(EC_LOG_ERROR, std::string("error while handing off staged records: ") + e.what());
    }
    // What could not be collected (out of memory) is lost: count it.
    staging_.for_each([&](Staging::Stage &stage) {
        std::lock_guard lock(stage.mutex);
        const std::uint32_t left = std::exchange(stage.records[lane.index], 0);
        lane.counters->accepted.fetch_add(left, std::memory_order_relaxed);
        lane.counters->dropped_internal.fetch_add(left, std::memory_order_relaxed);
    });
}

bool Batcher::queue(Lane &lane, BatchPtr batch, std::size_t records, std::size_t units,
                    spdlog::level::level_enum level)
{
    lane.counters->accepted.fetch_add(records, std::memory_order_relaxed);
    try {
        if (!batch)
            throw std::bad_alloc(); // the pool could not lend one
        // The queue carries the batch's address (the writer owns the batch
        // from there), and the admission units in the source line field.
        // Posted to the pool directly, so a failure reaches this catch (and
        // is counted per record), not spdlog's error handler; the batch is
        // then still ours and goes back to the pool.
        const Batch *const raw = batch.get();
        pool_->post_log(std::static_pointer_cast<spdlog::async_logger>(lane.logger->shared_from_this()),
                        BatchPool::message(raw, lane.logger->name(), level, static_cast<int>(units)),
                        spdlog::async_overflow_policy::block);
        (void)batch.release();
        return true;
    } catch (const std::exception &e) {
        admission_.release(units); // it never reached the queue
        lane.counters->dropped_internal.fetch_add(records, std::memory_order_relaxed);
        diag_.limited(error_limit_, EC_LOG_ERROR, [&] { return std::to_string(records) + " records dropped: " + e.what(); });
        return false;
    }
}

void Batcher::post_marker(Lane &lane, spdlog::level::level_enum level)
{
    auto logger = std::static_pointer_cast<spdlog::async_logger>(lane.logger->shared_from_this());
    if (level == spdlog::level::off) {
        pool_->post_flush(std::move(logger), spdlog::async_overflow_policy::block);
        return;
    }
    // A reopen carries when it was asked for: the writer gives its old
    // file what is left of the caller's overflow_timeout.
    const auto when = level == LogFileSink::kReopenLevel ? spdlog::log_clock::now() : spdlog::log_clock::time_point{};
    const spdlog::details::log_msg msg(when, spdlog::source_loc{}, lane.logger->name(), level,
                                       spdlog::string_view_t());
    pool_->post_log(std::move(logger), msg, spdlog::async_overflow_policy::block);
}

void Batcher::count_refused(const Lane &lane, std::size_t records)
{
    if (records == 0)
        return;
    lane.counters->dropped_overflow.fetch_add(records, std::memory_order_relaxed);
    const bool wait = settings_.overflow == mtacfg::Overflow::block;
    diag_.limited(overflow_limit_, EC_LOG_WARNING, [&] {
        return "queue full (" + std::to_string(settings_.queue_size) + " records): dropping records (overflow = " +
               (wait ? "block, waited " + std::to_string(settings_.overflow_timeout.count() / 1000) + " ms"
                     : std::string("drop")) +
               ")";
    });
}

void Batcher::count_format_error(const Lane &lane, const std::exception &e)
{
    // Taken in and lost: accepted = written + dropped_* still holds.
    lane.counters->accepted.fetch_add(1, std::memory_order_relaxed);
    lane.counters->dropped_internal.fetch_add(1, std::memory_order_relaxed);
    diag_.limited(error_limit_, EC_LOG_ERROR, [&] { return std::string("record dropped: ") + e.what(); });
}

} // namespace mtalog
