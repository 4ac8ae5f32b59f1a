// Reading a stream back: every message matching a subject from a sequence to
// the stream's end, through an ephemeral pull consumer (acknowledgements
// off, optionally headers only). The consumer's pending count says when the
// end is reached, so a stalled read is an error, never a short answer.
#pragma once

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
    bool headers_only = false;
    std::int64_t wait_ms = 5000; // the longest wait for the next batch
};

// A libnats status with the library's last error detail, for messages.
std::string nats_error_text(natsStatus s);

// Calls `each(msg, sequence)` in sequence order; `msg` is destroyed after the
// call. Returns an error text when the read could not be completed.
std::optional<std::string> read_stream(jsCtx *js, const StreamRead &r,
                                       const std::function<void(natsMsg *, std::uint64_t)> &each);

} // namespace mtalog::ship
