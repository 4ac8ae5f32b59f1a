#include "nats_link.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "stream_read.hpp"

namespace mtalog::ship {

void say(const std::string &line)
{
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::fprintf(stderr, "%s mtalog-ship: %s\n", stamp, line.c_str());
    std::fflush(stderr);
}

namespace {

// A publish waiting for its answer: its record and when it left. (cppcheck
// 2.10 does not see the uses through the map's iterators.)
struct Pending {
    // cppcheck-suppress unusedStructMember
    RecordId record;
    std::chrono::steady_clock::time_point sent;
};

// Answers arrive on libnats's threads, which natsConnection_Close does not
// wait for: their queue lives as long as the process, not as a connection.
// The publishes waiting for an answer are known by their message's address:
// the answer handler never reads the message (libnats may still be writing
// it out), and an answer whose message is no longer here (given up on after
// ack_wait) is dropped.
struct AckQueue {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<Ack> acks;
    std::unordered_map<const natsMsg *, Pending> in_flight;
    std::size_t wake_at = SIZE_MAX; // a waiter's threshold; SIZE_MAX: nobody waits
};

AckQueue &ack_queue()
{
    static auto *queue = new AckQueue; // never destroyed: a late callback may still use it
    return *queue;
}

std::atomic<bool> g_closing{false};   // a connection is being closed on purpose
std::atomic<bool> g_disconnect{false}; // lost since the main loop last looked
// When the connection last came back (steady clock, ns): what waited in
// libnats's reconnect buffer goes out then, and may be answered late.
std::atomic<std::int64_t> g_reconnected_at{0};

} // namespace

std::optional<std::string> NatsLink::connect(bool &fatal)
{
    close();
    g_closing = false;
    fatal = false;
    natsOptions *opts = nullptr;
    natsStatus st = natsOptions_Create(&opts);
    std::vector<const char *> urls;
    for (const auto &u : s_.servers)
        urls.push_back(u.c_str());
    const std::string name = "mtalog-ship " + s_.node;
    if (st == NATS_OK)
        st = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
    if (st == NATS_OK)
        st = natsOptions_SetName(opts, name.c_str());
    if (st == NATS_OK)
        st = natsOptions_SetTimeout(opts, 2000);
    if (st == NATS_OK)
        st = natsOptions_SetMaxReconnect(opts, -1);
    if (st == NATS_OK)
        st = natsOptions_SetReconnectWait(opts, 250);
    if (st == NATS_OK)
        st = natsOptions_SetPingInterval(opts, 2000);
    if (st == NATS_OK)
        st = natsOptions_SetDisconnectedCB(opts, &NatsLink::on_disconnected, nullptr);
    if (st == NATS_OK)
        st = natsOptions_SetReconnectedCB(opts, &NatsLink::on_reconnected, nullptr);
    if (st == NATS_OK && s_.credentials) {
        if (!s_.credentials->token.empty())
            st = natsOptions_SetToken(opts, s_.credentials->token.c_str());
        else
            st = natsOptions_SetUserInfo(opts, s_.credentials->user.c_str(), s_.credentials->password.c_str());
    }
    if (st == NATS_OK && (!s_.tls_ca.empty() || !s_.tls_cert.empty()))
        st = natsOptions_SetSecure(opts, true);
    if (st == NATS_OK && !s_.tls_ca.empty())
        st = natsOptions_LoadCATrustedCertificates(opts, s_.tls_ca.c_str());
    if (st == NATS_OK && !s_.tls_cert.empty())
        st = natsOptions_LoadCertificatesChain(opts, s_.tls_cert.c_str(), s_.tls_key.c_str());
    if (st != NATS_OK) {
        fatal = true;
        const std::string e = "connection options: " + nats_error_text(st);
        natsOptions_Destroy(opts);
        return e;
    }
    st = natsConnection_Connect(&nc_, opts);
    natsOptions_Destroy(opts);
    if (st != NATS_OK) {
        const std::string e = nats_error_text(st);
        nc_ = nullptr;
        fatal = st == NATS_CONNECTION_AUTH_FAILED || e.find("uthorization") != std::string::npos;
        if (fatal)
            return "the servers refused the credentials: " + e + " (check credentials_file)";
        return "cannot connect to any of the servers: " + e;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = s_.ack_wait.count();
    st = natsConnection_JetStream(&js_, nc_, &jo);
    if (st != NATS_OK)
        return "JetStream context: " + nats_error_text(st);
    return std::nullopt;
}

// A publishing context given up on is not destroyed at once: destroying it
// frees its reply subscription, and libnats 3.4.1's read loop may be taking
// in a late answer for it, using it without holding it (fixed in 3.6.1). It
// is kept until a minute has passed since both its retirement and the last
// reconnection (which sends what waited in libnats's buffer), then
// destroyed; the rest go when the connection is closed.
void NatsLink::retire_publishing()
{
    const auto now = std::chrono::steady_clock::now();
    if (pub_)
        retired_.push_back({pub_, now});
    pub_ = nullptr;
    const auto reconnected = std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(g_reconnected_at.load()));
    while (!retired_.empty() && now - std::max(retired_.front().second, reconnected) >= std::chrono::minutes(1)) {
        jsCtx_Destroy(retired_.front().first); // frees the messages it still held
        retired_.erase(retired_.begin());
    }
}

void NatsLink::close()
{
    g_closing = true;
    // The connection first: closing it joins libnats's read loop, so that
    // nothing is taking in a message for a subscription the contexts free.
    if (nc_)
        natsConnection_Close(nc_);
    for (const auto &[ctx, since] : retired_)
        jsCtx_Destroy(ctx);
    retired_.clear();
    if (pub_)
        jsCtx_Destroy(pub_);
    pub_ = nullptr;
    if (js_)
        jsCtx_Destroy(js_);
    js_ = nullptr;
    if (nc_)
        natsConnection_Destroy(nc_);
    nc_ = nullptr;
    // No answer can come now: what was in flight stays unanswered (the
    // ledger keeps it unverified, and a round decides).
    AckQueue &q = ack_queue();
    std::lock_guard lock(q.mutex);
    q.in_flight.clear();
}

bool NatsLink::connected() const
{
    return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

natsStatus NatsLink::flush(int ms) const
{
    return nc_ ? natsConnection_FlushTimeout(nc_, ms) : NATS_OK;
}

void NatsLink::complete(std::chrono::milliseconds limit)
{
    if (pub_) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = limit.count();
        js_PublishAsyncComplete(pub_, &po);
    }
    expire(true);
}

// Publishes go through a context of their own, made on the first publish
// and dropped when publishes are given up on, so that the rounds thread's
// context (reads of the stream) is never replaced under it. No MaxWait is
// given to libnats: its timer answers a publish that is still being written
// (the publishing thread waiting for the connection's lock while a
// reconnection holds it), and the handler would free the message under the
// writer. The waits are counted here instead (expire).
std::optional<std::string> NatsLink::publish(const char *subject, std::string_view payload, const RecordId &record,
                                             const char *id, const char *format)
{
    if (!pub_) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = s_.ack_wait.count();
        jo.PublishAsync.MaxPending = static_cast<int64_t>(s_.max_pending);
        jo.PublishAsync.AckHandler = &NatsLink::on_ack;
        jo.PublishAsync.AckHandlerClosure = &ack_queue();
        if (const natsStatus st = natsConnection_JetStream(&pub_, nc_, &jo); st != NATS_OK) {
            pub_ = nullptr;
            return "JetStream context: " + nats_error_text(st);
        }
    }
    natsMsg *msg = nullptr;
    natsStatus st = natsMsg_Create(&msg, subject, nullptr, payload.data(), static_cast<int>(payload.size()));
    if (st == NATS_OK)
        st = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(msg, "Mtalog-Node", s_.node.c_str());
    if (st == NATS_OK)
        st = natsMsgHeader_Set(msg, "Mtalog-Format", format);
    if (st != NATS_OK) {
        natsMsg_Destroy(msg);
        return nats_error_text(st);
    }
    AckQueue &q = ack_queue();
    const natsMsg *const key = msg;
    {
        // Before the publish: its answer may come before the call returns.
        std::lock_guard lock(q.mutex);
        q.in_flight[key] = Pending{record, std::chrono::steady_clock::now()};
    }
    st = js_PublishMsgAsync(pub_, &msg, nullptr);
    if (st != NATS_OK) {
        // Still ours, and libnats took it back from its table: no answer
        // can come for it.
        {
            std::lock_guard lock(q.mutex);
            q.in_flight.erase(key);
        }
        natsMsg_Destroy(msg);
        return nats_error_text(st);
    }
    return std::nullopt;
}

void NatsLink::expire(bool all)
{
    const auto now = std::chrono::steady_clock::now();
    if (!all && now - last_expiry_check_ < std::chrono::milliseconds(100))
        return;
    last_expiry_check_ = now;
    AckQueue &q = ack_queue();
    {
        std::lock_guard lock(q.mutex);
        const bool late = std::any_of(q.in_flight.begin(), q.in_flight.end(),
                                      [&](const auto &p) { return now - p.second.sent >= s_.ack_wait; });
        if (q.in_flight.empty() || (!all && !late))
            return;
        // All of them: the context that would take their answers goes.
        const std::string why = "no answer within ack_wait (" + std::to_string(s_.ack_wait.count()) + " ms)";
        for (const auto &[msg, p] : q.in_flight) {
            Ack a;
            a.record = p.record;
            a.error = why;
            q.acks.push_back(std::move(a));
        }
        q.in_flight.clear();
    }
    // libnats holds the messages (and counts them against MaxPending) until
    // an answer that may never come: a new context starts empty, and a late
    // answer to the old one is dropped (on_ack no longer finds it).
    retire_publishing();
}

void NatsLink::take_acks(std::vector<Ack> &out)
{
    out.clear();
    AckQueue &q = ack_queue();
    std::lock_guard lock(q.mutex);
    out.swap(q.acks);
}

void NatsLink::wait_for_acks(std::chrono::milliseconds limit, std::size_t enough)
{
    AckQueue &q = ack_queue();
    std::unique_lock lock(q.mutex);
    q.wake_at = std::max<std::size_t>(enough, 1);
    q.cv.wait_for(lock, limit, [&] { return q.acks.size() >= q.wake_at; });
    q.wake_at = SIZE_MAX;
}

bool NatsLink::take_disconnect()
{
    return g_disconnect.exchange(false);
}

void NatsLink::on_ack(jsCtx *, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    auto &q = *static_cast<AckQueue *>(closure);
    Ack a;
    if (pa && pa->Sequence > 0) {
        a.ok = true;
        a.duplicate = pa->Duplicate;
        a.seq = pa->Sequence;
    } else if (pa) {
        a.error = "acknowledged without a stream sequence";
    } else if (pae) {
        a.error = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
    }
    bool wake = false;
    {
        std::lock_guard lock(q.mutex);
        const auto it = q.in_flight.find(msg);
        if (it != q.in_flight.end()) {
            a.record = it->second.record;
            q.in_flight.erase(it);
            q.acks.push_back(std::move(a));
            wake = q.acks.size() >= q.wake_at;
        }
    }
    natsMsg_Destroy(msg); // the handler owns it (libnats 3.4)
    if (wake)
        q.cv.notify_one();
}

// Callbacks may run on libnats's threads after the object is gone: they
// touch nothing but process-wide state.
void NatsLink::on_disconnected(natsConnection *, void *)
{
    if (g_closing)
        return;
    g_disconnect = true;
    say("disconnected from the servers; reconnecting (records wait in the files)");
}

void NatsLink::on_reconnected(natsConnection *nc, void *)
{
    g_reconnected_at = std::chrono::steady_clock::now().time_since_epoch().count();
    char url[256] = {};
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    say(std::string("reconnected to ") + url);
}

} // namespace mtalog::ship
