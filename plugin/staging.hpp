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
    // A batch is handed off when it reaches either limit. Hand-offs take
    // spdlog's queue mutex and copy the batch; at 1,024 records they are
    // under 0.1% of hook calls, so they stay out of the p99.9 latency.
    static constexpr std::size_t kBatchRecords = 1024;
    static constexpr std::size_t kBatchBytes = 256 * 1024;
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

    // The calling thread's stage, made on its first record.
    Stage &local();
    // Calls `visit` on every stage (under the registry lock, not the stages').
    void for_each(const std::function<void(Stage &)> &visit);

private:
    Stage &lookup_slow(std::uintptr_t self);

    // Open addressing on the thread's id; an entry is written once (stage
    // first, then key with release) and never removed while the instance lives.
    struct Slot {
        std::atomic<std::uintptr_t> key{0};
        Stage *stage = nullptr;
    };
    static constexpr std::size_t kSlots = 256; // more threads than this use the map under the mutex

    const std::size_t files_;
    std::array<Slot, kSlots> slots_;
    std::mutex registry_mutex_;
    std::unordered_map<std::uintptr_t, std::unique_ptr<Stage>> stages_;
};

} // namespace mtalog
