// tail's check against the stream: the records the stream's leader holds in
// a range of sequences that tail's state has not seen.
//
// tail learns what to write from its durable consumer, and the consumer's
// bookkeeping is the servers': which message it delivered, which were
// acknowledged, which it still owes. nats-server 2.9 can lose that
// bookkeeping (a consumer leader elected after a kill that never learned of
// a delivery, acknowledgements that move its floor past a message, a replica
// whose store diverged from the leader's after every server was stopped):
// the consumer then owes nothing, and a record the stream holds never comes.
// The check reads the leader's copy (headers only) and compares.
#pragma once

#include <cstdint>
#include <nats/nats.h>
#include <optional>
#include <string>
#include <vector>

#include "stream_read.hpp"
#include "tail_state.hpp"

namespace mtalog::ship {

struct UnseenRecords {
    std::vector<std::uint64_t> seqs; // in order, at most `limit`
    std::uint64_t until = 0;        // checked through this sequence (below the first one left out)
    std::uint64_t messages = 0;     // read
};

// Reads the headers of sequences [from, until] matching `subject` from
// `stream`'s leader (`state` as stream_state() gave it), and lists those
// stored at `since_ns` (unix nanoseconds) or later that carry a record id
// `seen` has not seen; stops once `limit` are listed
// (`until` then ends before the first one left out). An error text when the
// read failed, a stop was requested, or the leader changed during it.
std::optional<std::string> find_unseen(jsCtx *js, natsConnection *nc, const std::string &stream,
                                       const std::string &subject, const StreamState &state, std::uint64_t from,
                                       std::uint64_t until, std::int64_t since_ns, const TailState &seen,
                                       std::size_t limit,
                                       UnseenRecords &out);

} // namespace mtalog::ship
