#include "nats_link.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>

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

// Answers arrive on libnats's threads, which natsConnection_Close does not
// wait for: their queue lives as long as the process, not as a connection.
struct AckQueue {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<Ack> acks;
    std::size_t wake_at = SIZE_MAX; // a waiter's threshold; SIZE_MAX: nobody waits
};

AckQueue &ack_queue()
{
    static auto *queue = new AckQueue; // never destroyed: a late callback may still use it
    return *queue;
}

std::atomic<bool> g_closing{false};   // a connection is being closed on purpose
std::atomic<bool> g_disconnect{false}; // lost since the main loop last looked

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
    jo.PublishAsync.MaxPending = static_cast<int64_t>(s_.max_pending);
    jo.PublishAsync.AckHandler = &NatsLink::on_ack;
    jo.PublishAsync.AckHandlerClosure = &ack_queue();
    st = natsConnection_JetStream(&js_, nc_, &jo);
    if (st != NATS_OK)
        return "JetStream context: " + nats_error_text(st);
    return std::nullopt;
}

void NatsLink::close()
{
    g_closing = true;
    if (js_)
        jsCtx_Destroy(js_);
    js_ = nullptr;
    if (nc_) {
        natsConnection_Close(nc_);
        natsConnection_Destroy(nc_);
    }
    nc_ = nullptr;
}

bool NatsLink::connected() const
{
    return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

natsStatus NatsLink::flush(int ms) const
{
    return nc_ ? natsConnection_FlushTimeout(nc_, ms) : NATS_OK;
}

void NatsLink::complete(std::chrono::milliseconds limit) const
{
    if (!js_)
        return;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = limit.count();
    js_PublishAsyncComplete(js_, &po);
}

std::optional<std::string> NatsLink::publish(const char *subject, std::string_view payload, const char *id,
                                             const char *format)
{
    natsMsg *msg = nullptr;
    natsStatus st = natsMsg_Create(&msg, subject, nullptr, payload.data(), static_cast<int>(payload.size()));
    if (st == NATS_OK)
        st = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(msg, "Mtalog-Node", s_.node.c_str());
    if (st == NATS_OK)
        st = natsMsgHeader_Set(msg, "Mtalog-Format", format);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = s_.ack_wait.count();
    if (st == NATS_OK)
        st = js_PublishMsgAsync(js_, &msg, &po);
    if (st != NATS_OK) {
        natsMsg_Destroy(msg); // still ours when the publish failed
        return nats_error_text(st);
    }
    return std::nullopt;
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
    const char *id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id)
        a.ours = parse_id(id, a.record);
    if (pa && pa->Sequence > 0) {
        a.ok = true;
        a.duplicate = pa->Duplicate;
        a.seq = pa->Sequence;
    } else if (pa) {
        a.error = "acknowledged without a stream sequence";
    } else if (pae) {
        a.error = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
    }
    if (!a.ok && id)
        a.error += std::string(" (") + id + ")";
    natsMsg_Destroy(msg); // the handler owns it (libnats 3.4)
    bool wake = false;
    {
        std::lock_guard lock(q.mutex);
        q.acks.push_back(std::move(a));
        wake = q.acks.size() >= q.wake_at;
    }
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
    char url[256] = {};
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    say(std::string("reconnected to ") + url);
}

} // namespace mtalog::ship
