#include "stream_read.hpp"

#include <algorithm>

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

std::optional<std::string> read_stream(jsCtx *js, const StreamRead &r,
                                       const std::function<void(natsMsg *, std::uint64_t)> &each)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = r.stream.c_str();
    so.Config.AckPolicy = js_AckNone;
    so.Config.DeliverPolicy = r.from > 1 ? js_DeliverByStartSequence : js_DeliverAll;
    so.Config.OptStartSeq = r.from > 1 ? r.from : 0;
    so.Config.HeadersOnly = r.headers_only;
    so.Config.InactiveThreshold = 60LL * 1000 * 1000 * 1000; // gone a minute after a crashed reader
    natsSubscription *sub = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus st = js_PullSubscribe(&sub, js, r.subject.c_str(), nullptr, nullptr, &so, &jerr);
    if (st != NATS_OK)
        return "subscribe: " + nats_error_text(st);
    std::optional<std::string> error;
    jsConsumerInfo *ci = nullptr;
    std::uint64_t remaining = 0, last_seq = 0;
    st = natsSubscription_GetConsumerInfo(&ci, sub, nullptr, &jerr);
    if (st == NATS_OK) {
        remaining = ci->NumPending;
        jsConsumerInfo_Destroy(ci);
    } else {
        error = "consumer info: " + nats_error_text(st);
    }
    while (!error && remaining > 0) {
        if (r.stop && r.stop->load()) {
            error = "stopped";
            break;
        }
        natsMsgList list{};
        const int batch = static_cast<int>(remaining < 1024 ? remaining : 1024);
        // In short waits, so that a stop is seen within a second.
        for (std::int64_t waited = 0;; waited += 1000) {
            st = natsSubscription_Fetch(&list, sub, batch, std::min<std::int64_t>(1000, r.wait_ms - waited), &jerr);
            if (st != NATS_TIMEOUT || waited + 1000 >= r.wait_ms || (r.stop && r.stop->load()))
                break;
        }
        if (st != NATS_OK) {
            error = "reading back (" + std::to_string(remaining) + " message(s) to go): " + nats_error_text(st);
            break;
        }
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
    }
    natsSubscription_Unsubscribe(sub); // deletes the ephemeral consumer
    natsSubscription_Destroy(sub);
    return error;
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
    out.current = !si->Cluster || !out.leader.empty();
    for (int i = 0; si->Cluster && i < si->Cluster->ReplicasLen; ++i) {
        const jsPeerInfo *p = si->Cluster->Replicas[i];
        out.current = out.current && (p->Current || p->Offline);
    }
    jsStreamInfo_Destroy(si);
    return std::nullopt;
}

} // namespace mtalog::ship
