// Per-thread staging: each thread that calls a hook formats its records into
// its own stage (one buffer per file) and hands spdlog's queue whole batches,
// not single records, so hook calls do not meet each other on the queue's
// mutex and spdlog's per-message cost is paid once per batch.
//
// A stage has its own mutex, taken by its thread for every record (never
// contended then) and by the flusher, a reopen or unload when they hand the
// stage's records off; so records are never left behind in a stage. Per-thread
// order is kept. A thread finds its stage in a small lock-free table keyed by
// pthread_self(), not through thread_local storage: the module keeps no TLS,
// which a dlclose would leave dangling in every thread that logged.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "escape.hpp"
#include "record.hpp"

namespace mtalog {

class Staging {
public:
    // A batch is handed off when it reaches either limit (lower for a
    // queue_size under 1,024: see Batcher::Batcher). A hand-off swaps the
    // stage's buffer for an empty one and takes spdlog's queue mutex; at
    // 1,024 records hand-offs are under 0.1% of hook calls. The byte limit is
    // 256 bytes a record, so a full batch always weighs at least its record
    // limit in admission units.
    static constexpr std::size_t kBatchRecords = 1024;
    static constexpr std::size_t kBatchBytes = kBatchRecords * 256;
    // The flusher frees a quiet thread's stage buffer that grew past this,
    // so a thread holds at most this much between bursts.
    static constexpr std::size_t kKeptBytes = 16 * 1024;

    struct Stage {
        std::mutex mutex;
        std::vector<Buffer> lines;          // per file: whole lines, each ending in '\n'
        std::vector<std::uint32_t> records; // per file: how many
        FormatCache cache;                  // what this thread's records share
    };

    explicit Staging(std::size_t files);
    Staging(const Staging &) = delete;
    Staging &operator=(const Staging &) = delete;

    // The calling thread's stage, made on its first record; std::bad_alloc
    // when there is no memory to make it (nothing is left half made).
    Stage &local();
    // Calls `visit` on every stage made so far. The registry lock is held
    // only to copy the list, never during `visit`, so a thread making its
    // first hook call never waits for a visit (which may hand records off);
    // with no memory for the copy, the visits run under it.
    void for_each(const std::function<void(Stage &)> &visit);

private:
    Stage &lookup_slow(std::uintptr_t self);

    // Open addressing on the thread's id. An entry is written once, under
    // the registry mutex: the stage pointer first, then the key with release
    // ordering; a reader loads the key with acquire ordering before it reads
    // the pointer, so whoever sees a key sees a fully built stage. Entries
    // (and stages) are never removed while the instance lives.
    struct Slot {
        std::atomic<std::uintptr_t> key{0};
        Stage *stage = nullptr;
    };
    static constexpr std::size_t kSlots = 256; // more threads than this use the map under the mutex

    const std::size_t files_;
    std::array<Slot, kSlots> slots_;
    std::mutex registry_mutex_;
    std::unordered_map<std::uintptr_t, std::unique_ptr<Stage>> stages_;
    std::vector<Stage *> all_; // every stage, in creation order
};

} // namespace mtalog
