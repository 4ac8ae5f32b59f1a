#include "staging.hpp"

#include <new>
#include <pthread.h>

namespace mtalog {

namespace {

std::uintptr_t self_id() noexcept { return static_cast<std::uintptr_t>(pthread_self()); }

std::size_t home_slot(std::uintptr_t id, std::size_t slots) noexcept
{
    return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ULL) >> 32) & (slots - 1);
}

} // namespace

Staging::Staging(std::size_t files) : files_(files) {}

Staging::Stage &Staging::local()
{
    const std::uintptr_t self = self_id();
    for (std::size_t i = home_slot(self, kSlots), n = 0; n < kSlots; ++n, i = (i + 1) & (kSlots - 1)) {
        const std::uintptr_t key = slots_[i].key.load(std::memory_order_acquire);
        if (key == self)
            return *slots_[i].stage;
        if (key == 0)
            break; // not in the table yet
    }
    return lookup_slow(self);
}

Staging::Stage &Staging::lookup_slow(std::uintptr_t self)
{
    std::lock_guard lock(registry_mutex_);
    if (const auto found = stages_.find(self); found != stages_.end())
        return *found->second; // the table is full and this thread lives in the map only
    // Everything that can fail comes before the stage is registered: a
    // failure (out of memory) leaves no half-made stage behind, and the next
    // call tries again.
    if (all_.size() == all_.capacity())
        all_.reserve(2 * all_.size() + 16); // so that the push_back below cannot fail
    auto made = std::make_unique<Stage>();
    made->lines.resize(files_);
    made->records.resize(files_, 0);
    auto &owned = stages_[self];
    owned = std::move(made);
    all_.push_back(owned.get());
    // Publish in the table: only here, under the mutex, are keys written.
    for (std::size_t i = home_slot(self, kSlots), n = 0; n < kSlots; ++n, i = (i + 1) & (kSlots - 1)) {
        if (slots_[i].key.load(std::memory_order_relaxed) == 0) {
            slots_[i].stage = owned.get();
            slots_[i].key.store(self, std::memory_order_release);
            break;
        }
    }
    return *owned;
}

void Staging::for_each(const std::function<void(Stage &)> &visit)
{
    std::vector<Stage *> stages;
    {
        std::lock_guard lock(registry_mutex_);
        try {
            stages = all_;
        } catch (const std::bad_alloc &) {
            // No memory for the copy: visited under the registry's lock
            // (a thread's first hook call waits meanwhile), not skipped.
            for (Stage *stage : all_)
                visit(*stage);
            return;
        }
    }
    for (Stage *stage : stages)
        visit(*stage);
}

} // namespace mtalog
