#include "grace_period.hpp"

#include <chrono>
#include <thread>

namespace mtacore {

std::size_t GracePeriod::shard_of_this_thread() noexcept
{
    // Trivially destructible TLS; threads are spread round-robin.
    static std::atomic<unsigned> next{0};
    thread_local unsigned shard_plus_one = 0;
    if (shard_plus_one == 0)
        shard_plus_one = next.fetch_add(1, std::memory_order_relaxed) % kShards + 1;
    return shard_plus_one - 1;
}

void GracePeriod::drain(unsigned idx) const
{
    for (int spins = 0;; ++spins) {
        long sum = 0;
        for (const auto &shard : shards_)
            sum += shard.count[idx].load(std::memory_order_seq_cst);
        if (sum == 0)
            return;
        if (spins < 64)
            std::this_thread::yield();
        else
            std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

void GracePeriod::synchronize()
{
    std::lock_guard lock(writers_);
    for (int flip = 0; flip < 2; ++flip) {
        const unsigned old = epoch_.load(std::memory_order_seq_cst) & 1u;
        epoch_.store(old ^ 1u, std::memory_order_seq_cst);
        drain(old);
    }
}

} // namespace mtacore
