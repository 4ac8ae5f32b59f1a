// Admission in front of the async queue: at most `capacity` records are in
// flight (admitted, not yet taken by the writer). The fast path is one atomic
// add. When full, `block` waits up to a timeout and `drop` refuses at once;
// either way a refused record is counted by the caller, never silently lost.
// spdlog 1.10 can only block forever or overwrite old records, so this is
// what gives the hook path a bound.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace mtalog {

class Admission {
public:
    explicit Admission(std::size_t capacity) : capacity_(static_cast<long>(capacity)) {}

    // True when the record may be queued. `wait` zero: never wait.
    bool admit(std::chrono::microseconds wait);
    // The writer took `n` records off the queue.
    void release(long n = 1) noexcept;

    [[nodiscard]] long in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }

private:
    bool try_take() noexcept;

    const long capacity_;
    std::atomic<long> in_flight_{0};
    std::atomic<int> waiters_{0};
    std::mutex mutex_;
    std::condition_variable space_;
};

} // namespace mtalog
