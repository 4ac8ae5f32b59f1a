#include "batch_pool.hpp"

#include <utility>

namespace mtalog {

void BatchReturn::operator()(Batch *batch) const noexcept
{
    if (batch->home != nullptr)
        batch->home->give(batch);
    else
        delete batch;
}

BatchPool::BatchPool(std::size_t reserve_bytes, std::size_t keep_bytes)
    : reserve_bytes_(reserve_bytes), keep_bytes_(keep_bytes)
{
    idle_.reserve(kKeep);
}

BatchPool::~BatchPool()
{
    for (Batch *batch : idle_)
        delete batch;
}

BatchPtr BatchPool::take(bool full)
{
    BatchPtr batch;
    {
        std::lock_guard lock(mutex_);
        taken_since_trim_ = true;
        if (!idle_.empty()) {
            batch.reset(idle_.back());
            idle_.pop_back();
        }
    }
    if (!batch) {
        auto made = std::make_unique<Batch>();
        made->home = this;
        {
            std::lock_guard lock(mutex_);
            ++live_;
        }
        batch.reset(made.release());
    }
    // An idle batch may hold the sink's small first buffer.
    if (full && batch->lines.capacity() < reserve_bytes_)
        batch->lines.reserve(reserve_bytes_);
    return batch;
}

void BatchPool::trim_if_unused() noexcept
{
    // Freed under the mutex (idle_ keeps its capacity, so giving back still
    // never allocates); nobody took a batch for a whole interval, so nobody
    // is likely to wait.
    std::lock_guard lock(mutex_);
    if (std::exchange(taken_since_trim_, false))
        return;
    for (Batch *batch : idle_)
        delete batch;
    live_ -= idle_.size();
    idle_.clear();
}

std::size_t BatchPool::idle() const
{
    std::lock_guard lock(mutex_);
    return idle_.size();
}

std::size_t BatchPool::live() const
{
    std::lock_guard lock(mutex_);
    return live_;
}

void BatchPool::give(Batch *batch) noexcept
{
    batch->lines.clear();
    {
        std::lock_guard lock(mutex_);
        if (batch->lines.capacity() <= keep_bytes_ && idle_.size() < kKeep) {
            idle_.push_back(batch);
            return;
        }
        --live_;
    }
    delete batch;
}

} // namespace mtalog
