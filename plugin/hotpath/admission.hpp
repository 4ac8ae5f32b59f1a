// Admission in front of the async queue: it bounds what waits there
// (admitted, not yet taken by the writer) to `capacity` units, where a batch
// weighs one unit per record, or one per 256 bytes when that is more, so
// queue_size bounds both the records and the memory that wait. A batch is
// admitted while fewer than `capacity` units wait (so the queue may pass
// capacity by one batch), and refused only when at least `capacity` wait.
// (The buffers behind those batches may hold more than their bytes: a batch
// from the BatchPool keeps its capacity; the pool bounds what it keeps idle.)
// When full, `block` waits up to a deadline and `drop` refuses at once;
// either way the caller counts a refused batch, record by record.
// spdlog 1.10 can only block forever or overwrite old records, so this is
// what gives the hook path a bound.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace mtalog {

class Admission {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kBytesPerUnit = 256;

    explicit Admission(std::size_t capacity) : capacity_(capacity) {}

    [[nodiscard]] static std::size_t weight(std::size_t records, std::size_t bytes) noexcept
    {
        return std::max(records, bytes / kBytesPerUnit);
    }

    // True when the batch may be queued; waits for room until `deadline`
    // (a deadline already past: never waits).
    bool admit(std::size_t units, Clock::time_point deadline);
    // Queues `units` without the capacity test: for a batch collected after
    // the caller saw room (the queue may then pass capacity by that batch).
    void force(std::size_t units) noexcept { in_flight_.fetch_add(units, std::memory_order_seq_cst); }
    // The writer took a batch of `units` off the queue.
    void release(std::size_t units) noexcept;

    [[nodiscard]] std::size_t waiting() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
    bool try_take(std::size_t units) noexcept;

    const std::size_t capacity_;
    std::atomic<std::size_t> in_flight_{0};
    std::atomic<int> waiters_{0};
    std::mutex mutex_;
    std::condition_variable space_;
};

} // namespace mtalog
