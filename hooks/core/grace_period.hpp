// Lock-free readers, waiting writers: the quiescence mechanism behind the hook
// table. A hook call enters a read section (two uncontended atomic adds on a
// per-thread shard); a writer publishes new state and then waits until every
// reader that could have seen the old state has left.
//
// Two counters per shard, selected by the low bit of an epoch. synchronize()
// flips the epoch and drains the old counter twice: a reader that read the
// epoch just before a flip but incremented after it is still caught by the
// second drain (the classic SRCU argument), and new readers never delay a
// drain, so a writer cannot be starved by a steady stream of calls.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <mutex>

namespace mtacore {

class GracePeriod {
public:
    static constexpr std::size_t kShards = 16;

    class ReadGuard {
    public:
        ReadGuard(const ReadGuard &) = delete;
        ReadGuard &operator=(const ReadGuard &) = delete;
        ~ReadGuard() { counter_->fetch_sub(1, std::memory_order_release); }

    private:
        friend class GracePeriod;
        explicit ReadGuard(std::atomic<long> *counter) : counter_(counter) {}
        std::atomic<long> *counter_;
    };

    [[nodiscard]] ReadGuard enter() noexcept
    {
        const unsigned idx = epoch_.load(std::memory_order_seq_cst) & 1u;
        auto *counter = &shards_[shard_of_this_thread()].count[idx];
        counter->fetch_add(1, std::memory_order_seq_cst);
        return ReadGuard(counter);
    }

    // Returns once every read section that began before the call has ended.
    void synchronize();

private:
    struct alignas(64) Shard {
        std::array<std::atomic<long>, 2> count{};
    };

    static std::size_t shard_of_this_thread() noexcept;
    void drain(unsigned idx) const;

    std::array<Shard, kShards> shards_{};
    std::atomic<unsigned> epoch_{0};
    std::mutex writers_;
};

} // namespace mtacore
