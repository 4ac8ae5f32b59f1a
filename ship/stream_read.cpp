#include "stream_read.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

namespace mtalog::ship {

std::string nats_error_text(natsStatus s)
{
    natsStatus ignored;
    const char *detail = nats_GetLastError(&ignored);
    std::string out = natsStatus_GetText(s);
    if (detail && *detail && out.find(detail) == std::string::npos)
        out += std::string(" (") + detail + ")";
    return out;
}

namespace {

// One ephemeral pull consumer of a read. libnats 3.4.1's natsSubscription_
// Fetch overflows its result array when the subscription already holds more
// than half a batch of messages (fixed in libnats 3.9.0): messages a server
// sends after an earlier fetch gave up wait there. So a consumer is only
// fetched from while every fetch got the whole batch it asked for; after
// anything less (a timeout, a short answer) it is dropped, and the read goes
// on with a new one from the next sequence.
class Consumer {
public:
    Consumer(jsCtx *js, const StreamRead &r) : js_(js), r_(r) {}
    ~Consumer() { drop(); }
    Consumer(const Consumer &) = delete;
    Consumer &operator=(const Consumer &) = delete;

    // A consumer from `from` on; the messages it has to deliver.
    std::optional<std::string> open(std::uint64_t from, std::uint64_t &pending)
    {
        drop();
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = r_.stream.c_str();
        so.Config.AckPolicy = js_AckNone;
        so.Config.DeliverPolicy = from > 1 ? js_DeliverByStartSequence : js_DeliverAll;
        so.Config.OptStartSeq = from > 1 ? from : 0;
        so.Config.HeadersOnly = r_.headers_only;
        so.Config.InactiveThreshold = 60LL * 1000 * 1000 * 1000; // gone a minute after a crashed reader
        // One placement in `replicas` lands on the leader: 6 x replicas
        // tries miss it about one time in a thousand (3 replicas: 1 in 1,500).
        // A try placed on an offline replica times out: it counts as a miss.
        const int tries = r_.on_server.empty() ? 1 : 6 * std::max(1, r_.replicas);
        std::string placed = "nowhere";
        for (int attempt = 0; attempt < tries; ++attempt) {
            // A stop is seen between tries (each is a few calls of up to
            // ack_wait): at most one try's wait, not all of them.
            if (r_.stop && r_.stop->load())
                return "stopped";
            jsErrCode jerr = static_cast<jsErrCode>(0);
            natsStatus st = js_PullSubscribe(&sub_, js_, r_.subject.c_str(), nullptr, nullptr, &so, &jerr);
            if (st != NATS_OK) {
                sub_ = nullptr;
                if (st == NATS_TIMEOUT && attempt + 1 < tries)
                    continue;
                return "subscribe: " + nats_error_text(st);
            }
            jsConsumerInfo *ci = nullptr;
            st = natsSubscription_GetConsumerInfo(&ci, sub_, nullptr, &jerr);
            if (st != NATS_OK) {
                drop(); // where it is was not seen
                return "consumer info: " + nats_error_text(st);
            }
            pending = ci->NumPending;
            placed = ci->Cluster && ci->Cluster->Leader ? ci->Cluster->Leader : "";
            jsConsumerInfo_Destroy(ci);
            if (r_.on_server.empty() || placed == r_.on_server)
                return std::nullopt;
            drop();
        }
        return "no reading consumer was placed on the stream leader " + r_.on_server + " in " +
               std::to_string(tries) + " tries (the last on " + (placed.empty() ? "an unnamed server" : placed) +
               ")";
    }
    [[nodiscard]] bool open() const { return sub_ != nullptr; }
    // Up to `batch` messages within `wait_ms`; the consumer is dropped
    // unless it delivered exactly `batch`.
    // NATS_ILLEGAL_STATE: messages were left over (not expected); the
    // consumer is dropped without fetching.
    natsStatus fetch(natsMsgList &list, int batch, std::int64_t wait_ms)
    {
        int held = 0;
        if (natsSubscription_GetPending(sub_, &held, nullptr) != NATS_OK || held != 0) {
            drop(); // not safe to fetch over
            return NATS_ILLEGAL_STATE;
        }
        jsErrCode jerr = static_cast<jsErrCode>(0);
        const natsStatus st = natsSubscription_Fetch(&list, sub_, batch, wait_ms, &jerr);
        if (st != NATS_OK || list.Count != batch)
            drop();
        return st;
    }
    void drop()
    {
        if (!sub_)
            return;
        natsSubscription_Unsubscribe(sub_); // deletes the ephemeral consumer
        // libnats 3.4.1's read loop looks a subscription up and then uses it
        // without holding it (fixed in 3.6.1): freed while a late message of
        // it is being taken in, it is used after the free. A round trip
        // first: the read loop takes in everything sent before the answer to
        // it, in order.
        if (!r_.nc || natsConnection_FlushTimeout(r_.nc, 2000) != NATS_OK)
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        natsSubscription_Destroy(sub_);
        sub_ = nullptr;
    }

private:
    jsCtx *js_;
    const StreamRead &r_;
    natsSubscription *sub_ = nullptr;
};

} // namespace

std::optional<std::string> read_stream(jsCtx *js, const StreamRead &r,
                                       const std::function<void(natsMsg *, std::uint64_t)> &each)
{
    Consumer consumer(js, r);
    std::uint64_t remaining = 0, last_seq = 0;
    if (auto e = consumer.open(r.from, remaining))
        return e;
    // Waits (and new consumers) since the last message, measured, up to
    // wait_ms; each fetch waits at most a second, so that a stop is seen.
    using Clock = std::chrono::steady_clock;
    auto progress = Clock::now();
    const auto waited = [&] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - progress).count();
    };
    std::optional<std::string> trouble; // the last failure while within wait_ms
    while (remaining > 0) {
        if (r.stop && r.stop->load())
            return "stopped";
        if (waited() >= r.wait_ms)
            return "reading back (" + std::to_string(remaining) + " message(s) to go): " +
                   trouble.value_or(nats_error_text(NATS_TIMEOUT));
        if (!consumer.open()) {
            std::uint64_t pending = 0;
            if (auto e = consumer.open(std::max(r.from, last_seq + 1), pending)) {
                trouble = *e;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            if ((remaining = pending) == 0)
                break;
        }
        natsMsgList list{};
        const int batch = static_cast<int>(remaining < 1024 ? remaining : 1024);
        const natsStatus st =
            consumer.fetch(list, batch, std::clamp<std::int64_t>(r.wait_ms - waited(), 1, 1000));
        if (st == NATS_TIMEOUT || st == NATS_ILLEGAL_STATE)
            continue;
        if (st != NATS_OK)
            return "reading back (" + std::to_string(remaining) + " message(s) to go): " + nats_error_text(st);
        progress = Clock::now();
        trouble.reset();
        std::optional<std::string> error;
        for (int i = 0; i < list.Count && !error; ++i) {
            natsMsg *m = list.Msgs[i];
            jsMsgMetaData *meta = nullptr;
            if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
                error = "a message came without its stream sequence";
                break;
            }
            const std::uint64_t seq = meta->Sequence.Stream;
            remaining = meta->NumPending;
            jsMsgMetaData_Destroy(meta);
            if (seq <= last_seq)
                continue; // delivered again: each message is passed on once, in order
            last_seq = seq;
            if (seq > r.until) {
                remaining = 0;
                break;
            }
            each(m, seq);
            if (seq == r.until)
                remaining = 0;
        }
        natsMsgList_Destroy(&list);
        if (error)
            return error;
    }
    return std::nullopt;
}

std::optional<std::string> stream_state(jsCtx *js, const std::string &stream, StreamState &out, bool *missing)
{
    jsStreamInfo *si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus st = js_GetStreamInfo(&si, js, stream.c_str(), nullptr, &jerr);
    if (missing)
        *missing = st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr;
    if (st != NATS_OK)
        return "stream info: " + nats_error_text(st);
    out.first_seq = si->State.FirstSeq;
    out.first_time_ns = si->State.FirstTime;
    out.limits = si->Config && (si->Config->MaxMsgs > 0 || si->Config->MaxBytes > 0 || si->Config->MaxAge > 0 ||
                                si->Config->MaxMsgsPerSubject > 0);
    out.last_seq = si->State.LastSeq;
    out.leader = si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "";
    out.replicas = si->Config && si->Config->Replicas > 1 ? static_cast<int>(si->Config->Replicas) : 1;
    out.current = !si->Cluster || !out.leader.empty();
    for (int i = 0; si->Cluster && i < si->Cluster->ReplicasLen; ++i) {
        const jsPeerInfo *p = si->Cluster->Replicas[i];
        out.current = out.current && (p->Current || p->Offline);
    }
    jsStreamInfo_Destroy(si);
    return std::nullopt;
}

} // namespace mtalog::ship
