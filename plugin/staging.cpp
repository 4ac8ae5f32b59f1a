#include "staging.hpp"

#include <atomic>

namespace mtalog {

namespace {

std::atomic<std::uint64_t> next_generation{1};

// A small cache of (instance generation, stage) per thread. Plain values
// only: a thread_local with a destructor would keep the module from unloading.
struct CacheEntry {
    std::uint64_t generation;
    Staging::Stage *stage;
};
constexpr std::size_t kCacheEntries = 4;
thread_local CacheEntry cache[kCacheEntries] = {};
thread_local unsigned cache_next = 0;

} // namespace

Staging::Staging(std::size_t files) : generation_(next_generation.fetch_add(1)), files_(files) {}

Staging::Stage &Staging::local()
{
    for (const CacheEntry &entry : cache)
        if (entry.generation == generation_)
            return *entry.stage;
    return lookup_slow();
}

Staging::Stage &Staging::lookup_slow()
{
    Stage *stage;
    {
        std::lock_guard lock(registry_mutex_);
        auto &slot = stages_[std::this_thread::get_id()];
        if (!slot) {
            slot = std::make_unique<Stage>();
            slot->lines.resize(files_);
            slot->records.resize(files_, 0);
        }
        stage = slot.get();
    }
    cache[cache_next++ % kCacheEntries] = CacheEntry{generation_, stage};
    return *stage;
}

void Staging::for_each(const std::function<void(Stage &)> &visit)
{
    std::lock_guard lock(registry_mutex_);
    for (auto &[id, stage] : stages_)
        visit(*stage);
}

} // namespace mtalog
