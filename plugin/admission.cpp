#include "admission.hpp"

namespace mtalog {

bool Admission::try_take() noexcept
{
    long current = in_flight_.load(std::memory_order_relaxed);
    while (current < capacity_) {
        if (in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel))
            return true;
    }
    return false;
}

bool Admission::admit(std::chrono::microseconds wait)
{
    if (in_flight_.fetch_add(1, std::memory_order_acq_rel) < capacity_)
        return true;
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    if (wait.count() <= 0)
        return false;
    std::unique_lock lock(mutex_);
    waiters_.fetch_add(1);
    const bool got = space_.wait_for(lock, wait, [this] { return try_take(); });
    waiters_.fetch_sub(1);
    return got;
}

void Admission::release(long n) noexcept
{
    in_flight_.fetch_sub(n, std::memory_order_acq_rel);
    if (waiters_.load() > 0) {
        std::lock_guard lock(mutex_);
        space_.notify_all();
    }
}

} // namespace mtalog
