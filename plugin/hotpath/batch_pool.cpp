#include "batch_pool.hpp"

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

BatchPtr BatchPool::take()
{
    BatchPtr batch;
    {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            batch.reset(idle_.back());
            idle_.pop_back();
        }
    }
    if (!batch) {
        auto made = std::make_unique<Batch>();
        made->home = this;
        batch.reset(made.release());
    }
    // An idle batch may hold the sink's small first buffer.
    if (batch->lines.capacity() < reserve_bytes_)
        batch->lines.reserve(reserve_bytes_);
    return batch;
}

std::size_t BatchPool::idle() const
{
    std::lock_guard lock(mutex_);
    return idle_.size();
}

void BatchPool::give(Batch *batch) noexcept
{
    batch->lines.clear();
    if (batch->lines.capacity() <= keep_bytes_) {
        std::lock_guard lock(mutex_);
        if (idle_.size() < kKeep) {
            idle_.push_back(batch);
            return;
        }
    }
    delete batch;
}

} // namespace mtalog
