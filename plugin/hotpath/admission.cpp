#include "admission.hpp"

namespace mtalog {

bool Admission::try_take(std::size_t units) noexcept
{
    std::size_t current = in_flight_.load(std::memory_order_seq_cst);
    while (current < capacity_) {
        if (in_flight_.compare_exchange_weak(current, current + units, std::memory_order_seq_cst))
            return true;
    }
    return false;
}

bool Admission::admit(std::size_t units, Clock::time_point deadline)
{
    if (try_take(units))
        return true;
    if (Clock::now() >= deadline)
        return false;
    // No wake-up is lost: a waiter registers in waiters_ and then tests for
    // room, both under mutex_ and both sequentially consistent; release()
    // frees room and then reads waiters_, both sequentially consistent. In
    // the single order of those four operations either release() sees the
    // waiter (and notifies under mutex_, which the waiter holds until it
    // sleeps, so the notice comes after it sleeps) or the waiter's test sees
    // the room.
    std::unique_lock lock(mutex_);
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    const bool got = space_.wait_until(lock, deadline, [this, units] { return try_take(units); });
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return got;
}

void Admission::release(std::size_t units) noexcept
{
    in_flight_.fetch_sub(units, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) > 0) {
        std::lock_guard lock(mutex_);
        space_.notify_all();
    }
}

} // namespace mtalog
