// Per-thread staging: each thread that calls a hook formats its records into
// its own stage (one buffer per file) and hands spdlog's queue whole batches,
// not single records, so hook calls do not meet each other on the queue's
// mutex and spdlog's per-message cost is paid once per batch.
//
// A stage has its own mutex, taken by its thread for every record (never
// contended then) and by the flusher, a reopen or unload when they hand the
// stage's records off; so records are never left behind in a stage. Per-thread
// order is kept. The thread-local cache that finds a thread's stage holds only
// plain values (trivially destructible), so it does not pin the module.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "escape.hpp"

namespace mtalog {

class Staging {
public:
    // A batch is handed off when it reaches either limit.
    static constexpr std::size_t kBatchRecords = 64;
    static constexpr std::size_t kBatchBytes = 16 * 1024;

    struct Stage {
        std::mutex mutex;
        std::vector<Buffer> lines;          // per file: whole lines, each ending in '\n'
        std::vector<std::uint32_t> records; // per file: how many
    };

    explicit Staging(std::size_t files);
    Staging(const Staging &) = delete;
    Staging &operator=(const Staging &) = delete;

    // The calling thread's stage, made on its first record.
    Stage &local();
    // Calls `visit` on every stage (under the registry lock, not the stages').
    void for_each(const std::function<void(Stage &)> &visit);

private:
    Stage &lookup_slow();

    const std::uint64_t generation_; // never reused, so a stale thread-local entry never matches
    const std::size_t files_;
    std::mutex registry_mutex_;
    std::unordered_map<std::thread::id, std::unique_ptr<Stage>> stages_;
};

} // namespace mtalog
