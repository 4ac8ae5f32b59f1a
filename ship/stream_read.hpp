// Reading a stream back: every message matching a subject from a sequence to
// the stream's end, through an ephemeral pull consumer (acknowledgements
// off, optionally headers only); and what the stream's state is.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <nats/nats.h>
#include <optional>
#include <string>

namespace mtalog::ship {

struct StreamRead {
    std::string stream;
    std::string subject;    // may hold wildcards
    std::uint64_t from = 1; // first stream sequence
    std::uint64_t until = UINT64_MAX; // the read ends once past it (or at the stream's end)
    bool headers_only = false;
    std::int64_t wait_ms = 5000;               // the longest wait for the next batch
    const std::atomic<bool> *stop = nullptr;   // ends the read early (an error) when set
    natsConnection *nc = nullptr;              // js's connection: flushed before the consumer is freed
    // The server whose copy of the stream is read (its leader), or "" for
    // any; `replicas` is the stream's replica count. nats-server places an
    // ephemeral consumer on one replica picked at random (offline ones
    // included), and it reads that replica's store: one behind the leader
    // ends the read short, one that diverged from it (seen with 2.9.10 after
    // every server was stopped) holds other messages at the same sequences.
    // A consumer placed elsewhere is deleted and made again.
    std::string on_server;
    int replicas = 1;
};

// A libnats status with the library's last error detail, for messages.
std::string nats_error_text(natsStatus s);

// Calls `each(msg, sequence)` in sequence order, each message once; `msg` is
// destroyed after the call. The read ends when the consumer has nothing
// pending; a stalled read is an error text, never a short answer.
std::optional<std::string> read_stream(jsCtx *js, const StreamRead &r,
                                       const std::function<void(natsMsg *, std::uint64_t)> &each);

struct StreamState {
    std::uint64_t first_seq = 0, last_seq = 0;
    std::int64_t first_time_ns = 0;
    bool limits = false; // max_age, max_msgs or max_bytes: old messages go
    std::string leader;  // the leader's server name ("" while there is none)
    int replicas = 1;    // the stream's replica count
    bool current = true; // a leader, and every replica that is online is current
};
// The stream's state, or an error text (`missing` when it does not exist).
std::optional<std::string> stream_state(jsCtx *js, const std::string &stream, StreamState &out, bool *missing = nullptr);

} // namespace mtalog::ship
