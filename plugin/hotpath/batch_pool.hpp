// Batches travel from a calling thread to the writer by pointer, never by
// copy. A thread whose stage buffer is full swaps it with the empty buffer
// of a Batch from this pool and posts the Batch's address through spdlog's
// queue (the message carries the pointer's eight bytes, tagged); the sink
// takes the lines (swapping them into its own buffer when that is empty)
// and the Batch goes back to the pool when its BatchPtr is dropped, whoever
// drops it. So the caller's hand-off costs a swap and the queue's mutex, not
// a copy of up to 256 KiB, and spdlog's queue slots hold no batch text.
//
// Memory: batches in the queue are bounded by admission; the pool keeps at
// most kKeep idle batches, frees one whose buffer grew past `keep_bytes` (a
// batch with very long records) instead of keeping it, and frees every idle
// one when trim_if_unused() finds none taken since its last call (the
// flusher calls it), so a quiet instance gives the memory back.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <spdlog/details/log_msg.h>

#include "escape.hpp"

namespace mtalog {

class BatchPool;

struct Batch {
    Buffer lines;             // whole lines, each ending in '\n'
    BatchPool *home = nullptr; // where it goes back to
};

struct BatchReturn {
    void operator()(Batch *batch) const noexcept;
};
using BatchPtr = std::unique_ptr<Batch, BatchReturn>;

// Exchanges two buffers' contents without copying heap storage (fmt's
// buffers have no swap; their moves are noexcept).
inline void swap_buffers(Buffer &a, Buffer &b) noexcept
{
    Buffer held(std::move(a));
    a = std::move(b);
    b = std::move(held);
}

class BatchPool {
public:
    static constexpr std::size_t kKeep = 8;

    // `reserve_bytes` is what a stage fills before its hand-off.
    BatchPool(std::size_t reserve_bytes, std::size_t keep_bytes);
    ~BatchPool();
    BatchPool(const BatchPool &) = delete;
    BatchPool &operator=(const BatchPool &) = delete;

    // An empty batch: an idle one, or a new one. With `full`, its buffer
    // holds reserve_bytes, so a stage that gets it in exchange never grows
    // it by steps on the hook path. May throw std::bad_alloc.
    [[nodiscard]] BatchPtr take(bool full);
    // Frees the idle batches if none was taken since the last call.
    void trim_if_unused() noexcept;
    [[nodiscard]] std::size_t idle() const;
    [[nodiscard]] std::size_t live() const; // batches in existence: idle, queued or being written

    // A message through spdlog's queue, as mtalog lays it out (every field
    // spdlog carries, and what it means here; LogFileSink::sink_it_ reads it):
    //   payload          the Batch's address, its eight bytes (spdlog copies
    //                    them into the queue slot); lines travel in the Batch
    //   source.funcname  kTag: the payload is a batch (anything else is not)
    //   source.line      the admission units the batch holds, released by
    //                    the writer once it takes the batch off the queue
    //   level            what the message is: LogFileSink::kBatchLevel (a
    //                    thread's own batch), kCollectedLevel (records
    //                    collected from quiet threads), kFinalLevel (unload's
    //                    last batch), kReopenLevel (a reopen marker, no
    //                    batch); a flush is spdlog's own (level off)
    //   time             a reopen marker's: when log_reopen posted it (the
    //                    writer gives the old file what is left of the
    //                    caller's overflow_timeout); unused otherwise
    //   logger name      unused
    // The sink takes ownership (from() below) exactly once per message, so
    // a logger carrying batches has exactly one sink: a second sink would
    // return each batch to the pool twice. make_batch_logger() (batcher.hpp)
    // builds every such logger and checks it.
    //
    // The message that carries `batch`. Ownership passes only once the
    // message is queued (the caller then releases its BatchPtr). `batch`
    // must outlive the message (it is the pointer's own storage).
    [[nodiscard]] static spdlog::details::log_msg message(const Batch *const &batch, spdlog::string_view_t logger,
                                                          spdlog::level::level_enum level, int units) noexcept
    {
        return {spdlog::log_clock::time_point{}, spdlog::source_loc{nullptr, units, kTag},
                logger, level, spdlog::string_view_t(reinterpret_cast<const char *>(&batch), sizeof batch)};
    }
    static spdlog::details::log_msg message(const Batch *&&, spdlog::string_view_t, spdlog::level::level_enum,
                                            int) = delete; // a temporary pointer would dangle in the payload
    // The batch a message carries, owned from here on; empty for a message
    // whose payload is the lines themselves.
    [[nodiscard]] static BatchPtr from(const spdlog::details::log_msg &msg) noexcept
    {
        if (msg.source.funcname != kTag || msg.payload.size() != sizeof(Batch *))
            return BatchPtr();
        Batch *batch = nullptr;
        std::memcpy(&batch, msg.payload.data(), sizeof batch);
        return BatchPtr(batch);
    }

private:
    friend struct BatchReturn;
    static constexpr const char kTag[] = "mtalog batch";
    void give(Batch *batch) noexcept;

    const std::size_t reserve_bytes_;
    const std::size_t keep_bytes_;
    mutable std::mutex mutex_;
    std::vector<Batch *> idle_;  // capacity kKeep, reserved up front: giving back never allocates
    std::size_t live_ = 0;       // under mutex_
    bool taken_since_trim_ = false; // under mutex_
};

} // namespace mtalog
