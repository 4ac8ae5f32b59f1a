#include "tail_check.hpp"

#include <atomic>
#include <cstdlib>

#include "record_id.hpp"
#include "signals.hpp"

namespace mtalog::ship {

std::optional<std::string> find_unseen(jsCtx *js, natsConnection *nc, const std::string &stream,
                                       const std::string &subject, const StreamState &state, std::uint64_t from,
                                       std::uint64_t until, std::int64_t since_ns, const TailState &seen,
                                       std::size_t limit,
                                       UnseenRecords &out)
{
    out = UnseenRecords{};
    out.until = until;
    StreamRead read;
    read.stream = stream;
    read.subject = subject;
    read.from = from;
    read.until = until;
    read.headers_only = true;
    read.nc = nc;
    read.on_server = state.replicas > 1 ? state.leader : ""; // (one replica: its info names no server)
    read.replicas = state.replicas;
    // The read ends early once `limit` are listed (the rest is the next
    // check's), or on SIGTERM.
    std::atomic<bool> stop{false};
    read.stop = &stop;
    bool full = false;
    auto error = read_stream(js, read, [&](natsMsg *m, std::uint64_t seq) {
        if (stop_requested())
            stop = true;
        if (stop || seq > until)
            return;
        ++out.messages;
        const char *id = nullptr, *size = nullptr;
        RecordId rid;
        std::string_view node;
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !id || !parse_id(id, rid, &node) ||
            natsMsgHeader_Get(m, "Nats-Msg-Size", &size) != NATS_OK || !size)
            return; // not a record of mtalog-ship's: nothing to compare it with
        if (seen.seen(node, rid.key, rid.offset, rid.offset + std::strtoull(size, nullptr, 10) + 1))
            return;
        jsMsgMetaData *meta = nullptr;
        const bool old = natsMsg_GetMetaData(&meta, m) == NATS_OK && meta->Timestamp < since_ns;
        jsMsgMetaData_Destroy(meta);
        if (old)
            return;
        if (out.seqs.size() == limit) {
            full = true;
            stop = true;
            out.until = seq - 1;
            return;
        }
        out.seqs.push_back(seq);
    });
    if (error && stop && full && !stop_requested())
        error.reset(); // ended at the limit: checked through out.until
    else if (error && stop)
        error = "stopped";
    if (!error && !read.on_server.empty()) {
        // What a replica that is no longer the leader holds is not what the
        // stream holds.
        StreamState after;
        if (auto e = stream_state(js, stream, after))
            error = "cannot tell whether the stream's leader changed during the check: " + *e;
        else if (after.leader != state.leader)
            error = "the stream's leader changed during the check";
    }
    return error;
}

} // namespace mtalog::ship
