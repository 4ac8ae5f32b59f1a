#include "shipper.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <mutex>
#include <nats/nats.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "cursor.hpp"
#include "spool.hpp"
#include "stream_read.hpp"

namespace mtalog::ship {

namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_status = 0;
std::atomic<bool> g_closing{false}; // a connection is being closed on purpose

void on_stop(int)
{
    g_stop = 1;
}
void on_status(int)
{
    g_status = 1;
}

void install_signals()
{
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_status;
    sigaction(SIGUSR1, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

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


// "<node>.<key hex>.<offset>" -> key, offset
bool parse_id(std::string_view id, std::uint64_t &key, std::uint64_t &offset)
{
    const auto last = id.rfind('.');
    if (last == std::string_view::npos || last < 17 || id[last - 17] != '.' || last + 1 == id.size())
        return false;
    const char *key_begin = id.data() + last - 16, *off_begin = id.data() + last + 1;
    const auto k = std::from_chars(key_begin, key_begin + 16, key, 16);
    const auto o = std::from_chars(off_begin, id.data() + id.size(), offset, 10);
    return k.ec == std::errc() && k.ptr == key_begin + 16 && o.ec == std::errc() && o.ptr == id.data() + id.size();
}

// Writes "<node>.<key hex>.<offset>" into `out` (room for node + 40 bytes).
std::size_t format_id(char *out, std::string_view node, std::uint64_t key, std::uint64_t offset)
{
    char *p = std::copy(node.begin(), node.end(), out);
    *p++ = '.';
    p = write_key_hex(p, key);
    *p++ = '.';
    p = std::to_chars(p, p + 20, offset).ptr;
    *p = '\0';
    return static_cast<std::size_t>(p - out);
}

struct Ack {
    bool ours = false; // the id parsed into key and offset
    bool ok = false;
    bool duplicate = false;
    std::uint64_t key = 0, offset = 0, seq = 0;
    std::string id, error; // only for failures and duplicates (rare)
};

// Acks arrive on libnats's threads, which natsConnection_Close does not wait
// for: their queue lives as long as the process, not as a connection.
struct AckQueue {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<Ack> acks;
    std::size_t wake_at = SIZE_MAX; // a waiter's threshold; SIZE_MAX: nobody waits
};

AckQueue &ack_queue()
{
    static AckQueue *queue = new AckQueue; // never destroyed: a late callback may still use it
    return *queue;
}

// A connection and its JetStream context.
class Nats {
public:
    using Ack = mtalog::ship::Ack;

    ~Nats() { close(); }

    // One attempt; an error text on failure, and `fatal` when retrying
    // cannot help (bad credentials, bad TLS files).
    std::optional<std::string> connect(const Settings &s, bool &fatal)
    {
        close();
        g_closing = false;
        fatal = false;
        natsOptions *opts = nullptr;
        natsStatus st = natsOptions_Create(&opts);
        std::vector<const char *> urls;
        for (const auto &u : s.servers)
            urls.push_back(u.c_str());
        const std::string name = "mtalog-ship " + s.node;
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
            st = natsOptions_SetDisconnectedCB(opts, &Nats::on_disconnected, this);
        if (st == NATS_OK)
            st = natsOptions_SetReconnectedCB(opts, &Nats::on_reconnected, this);
        if (st == NATS_OK && s.credentials) {
            if (!s.credentials->token.empty())
                st = natsOptions_SetToken(opts, s.credentials->token.c_str());
            else
                st = natsOptions_SetUserInfo(opts, s.credentials->user.c_str(), s.credentials->password.c_str());
        }
        if (st == NATS_OK && (!s.tls_ca.empty() || !s.tls_cert.empty()))
            st = natsOptions_SetSecure(opts, true);
        if (st == NATS_OK && !s.tls_ca.empty())
            st = natsOptions_LoadCATrustedCertificates(opts, s.tls_ca.c_str());
        if (st == NATS_OK && !s.tls_cert.empty())
            st = natsOptions_LoadCertificatesChain(opts, s.tls_cert.c_str(), s.tls_key.c_str());
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
        jo.Wait = s.ack_wait.count();
        jo.PublishAsync.MaxPending = static_cast<int64_t>(s.max_pending);
        jo.PublishAsync.AckHandler = &Nats::on_ack;
        jo.PublishAsync.AckHandlerClosure = &ack_queue();
        st = natsConnection_JetStream(&js_, nc_, &jo);
        if (st != NATS_OK)
            return "JetStream context: " + nats_error_text(st);
        return std::nullopt;
    }

    void close()
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

    [[nodiscard]] bool connected() const { return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }
    // Waits until the server has everything sent so far (acks included).
    [[nodiscard]] natsStatus flush(int ms) const { return nc_ ? natsConnection_FlushTimeout(nc_, ms) : NATS_OK; }
    [[nodiscard]] jsCtx *js() const { return js_; }

    // Acks that arrived, oldest first, into `out` (its storage is reused).
    static void take_acks(std::vector<Ack> &out)
    {
        out.clear();
        AckQueue &q = ack_queue();
        std::lock_guard lock(q.mutex);
        out.swap(q.acks);
    }
    // Waits until `enough` acks wait to be taken, or `limit` passed. Only a
    // waiter's threshold wakes it: one wake-up per batch, not per ack.
    static void wait_for_acks(std::chrono::milliseconds limit, std::size_t enough)
    {
        AckQueue &q = ack_queue();
        std::unique_lock lock(q.mutex);
        q.wake_at = std::max<std::size_t>(enough, 1);
        q.cv.wait_for(lock, limit, [&] { return q.acks.size() >= q.wake_at; });
        q.wake_at = SIZE_MAX;
    }

private:
    static void on_ack(jsCtx *, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
    {
        auto &q = *static_cast<AckQueue *>(closure);
        Ack a;
        const char *id = nullptr;
        if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id)
            a.ours = parse_id(id, a.key, a.offset);
        if (pa && pa->Sequence > 0) {
            a.ok = true;
            a.duplicate = pa->Duplicate;
            a.seq = pa->Sequence;
        } else if (pa) {
            a.error = "acknowledged without a stream sequence";
        } else if (pae) {
            a.error = pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
        }
        if (id && (!a.ok || a.duplicate))
            a.id = id;
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
    static void on_disconnected(natsConnection *, void *)
    {
        if (!g_closing)
            say("disconnected from the servers; reconnecting (records wait in the files)");
    }
    static void on_reconnected(natsConnection *nc, void *)
    {
        char url[256] = {};
        natsConnection_GetConnectedUrl(nc, url, sizeof url);
        say(std::string("reconnected to ") + url);
    }

    natsConnection *nc_ = nullptr;
    jsCtx *js_ = nullptr;
};

struct Counters {
    std::uint64_t published = 0;    // messages sent (retries included)
    std::uint64_t acked = 0;        // acknowledged as stored
    std::uint64_t duplicates = 0;   // acknowledged as already stored (de-duplicated by the server)
    std::uint64_t unresolved = 0;   // records in flight when a publish failed (then
                                    // found stored or sent again)
    std::uint64_t found_stored = 0; // records a resync found in the stream, not sent again
    std::uint64_t failures = 0;     // failed publishes (each leads to a resync)
    std::uint64_t resyncs = 0;
    std::uint64_t false_duplicates = 0; // "duplicate" acks whose sequence did not hold the record
    std::uint64_t copies_deleted = 0;   // audit: second copies of an id deleted from the stream
    std::uint64_t bytes = 0;            // payload bytes acknowledged
    // Records acknowledged or found stored after a resync that the confirming
    // read did not find (a server gave them up: looked up and sent again),
    // or whose confirmation a new failure cut short (looked up again). Each
    // such record was counted once in acked or found_stored already, and is
    // counted there again: records = acked + found_stored - unconfirmed.
    std::uint64_t unconfirmed = 0;
};

class Shipper {
public:
    Shipper(const Settings &s, const RunOptions &o) : s_(s), o_(o)
    {
        for (const auto &f : s_.files)
            sources_.emplace_back().spec = &f;
        cursor_path_ = s_.state_dir + "/cursor.json";
        status_path_ = s_.state_dir + "/status.json";
    }

    int work()
    {
        if (auto error = prepare_state())
            return fail(*error);
        if (!connect_until_done())
            return 1;
        if (!ensure_stream())
            return 1;
        resync_needed_ = true;
        auto last_save = Clock::now(), last_status = Clock::now();
        while (!g_stop) {
            if (resync_needed_ && !resync())
                continue;
            take_acks();
            if (failed_) {
                resync_needed_ = true;
                continue;
            }
            if (probation_ && Clock::now() >= confirm_at_ && !confirm())
                confirm_at_ = Clock::now() + std::max(s_.confirm_after, std::chrono::milliseconds(500)); // later
            if (failed_)
                continue;
            const bool progressed = read_and_publish();
            const auto now = Clock::now();
            if (dirty_ && now - last_save >= std::chrono::milliseconds(200)) {
                save();
                last_save = now;
            }
            if (g_status || now - last_status >= s_.status_interval) {
                g_status = 0;
                report_status();
                last_status = now;
            }
            if (o_.once && caught_up()) {
                save();
                break;
            }
            if (!progressed) {
                // With the window full, wait for an eighth of it (at most half
                // of what is in flight) to be acknowledged, or 20 ms: a
                // wake-up per ack would cost more than the ack.
                const bool full = pending_entries_ >= s_.max_pending;
                nats_.wait_for_acks(std::chrono::milliseconds(full ? 20 : 50),
                                    full ? std::clamp<std::size_t>(in_flight_ / 2, 1, s_.max_pending / 8) : 1);
            }
        }
        finish();
        report_status();
        const double busy = std::chrono::duration<double>(last_ack_ - first_publish_).count();
        char rate[96] = "";
        if (c_.acked > 0 && busy > 0)
            std::snprintf(rate, sizeof rate, " in %.3f s from the first publish to the last ack (%.0f records/s)", busy,
                          static_cast<double>(c_.acked) / busy);
        say("stopped: " + std::to_string(c_.acked) + " records shipped" + rate + " (" + std::to_string(c_.duplicates) +
            " already in the stream), " +
            (probation_ ? "cursor left as last saved (what came after the last read-back is not confirmed yet: the "
                          "next start reads back)"
                        : "cursor saved"));
        const bool broken = std::any_of(sources_.begin(), sources_.end(), [](const Source &src) { return src.broken; });
        return broken ? 1 : 0;
    }

private:
    struct Pending {
        std::uint64_t offset = 0, end = 0;
        std::uint64_t seq = 0;
        bool acked = false;
        bool sent = false; // false: found stored, never sent in this run
    };
    struct KeyRun {
        std::deque<Pending> pending; // records read, not yet behind the cursor; by offset, ascending
        std::uint64_t floor_seq = 0;              // this key's messages past its offset have a higher sequence
        // Offsets acknowledged or found stored (so counted) before a resync but
        // not yet behind the cursor: read again after it, they are found
        // stored, and must not be counted a second time.
        std::set<std::uint64_t> counted;
    };
    struct Source {
        const ShipFile *spec = nullptr;
        KeyCache cache;
        std::unique_ptr<Reader> reader;
        Candidate active;
        std::string buffer;     // read, not yet a complete line
        std::uint64_t next = 0; // offset of buffer's start
        bool broken = false;    // a file shrank: shipping stopped here
        bool warned_partial = false; // said once that the file ends without a newline
        Clock::time_point next_list{};
        Clock::time_point behind_since{};
        std::vector<std::pair<std::string, std::string>> subjects; // record type -> subject
        bool all_done = false;    // the last listing found nothing left to open (no reader opened since)
        bool open_failed = false; // the last listing could not open a file (it is tried again)
    };

    static int fail(const std::string &e)
    {
        say("error: " + e);
        return 1;
    }

    std::optional<std::string> prepare_state()
    {
        std::error_code ec;
        std::filesystem::create_directories(s_.state_dir, ec);
        if (::access(s_.state_dir.c_str(), W_OK | X_OK) != 0)
            return "state_dir \"" + s_.state_dir + "\" is not a writable directory: " + std::strerror(errno);
        auto loaded = load_cursor(cursor_path_);
        if (auto *e = std::get_if<std::string>(&loaded)) {
            // Safe recovery: the stream itself says what was shipped.
            const std::string aside = cursor_path_ + ".corrupt-" + std::to_string(::time(nullptr));
            ::rename(cursor_path_.c_str(), aside.c_str());
            say("warning: " + *e + "; moved to " + aside +
                "; reading this node's messages back from the stream to know what was shipped");
            cursor_ = Cursor{};
        } else {
            cursor_ = std::get<Cursor>(std::move(loaded));
            if (!cursor_.node.empty() && cursor_.node != s_.node)
                return "the cursor in " + s_.state_dir + " belongs to node \"" + cursor_.node + "\", not \"" + s_.node +
                       "\": give each node its own state_dir";
        }
        cursor_.node = s_.node;
        if (o_.audit) {
            // Every file still on disk is read again; the read-back from the
            // stream's first message says which records it holds.
            cursor_.scan_from = 0;
            for (auto &[key, k] : cursor_.keys) {
                k.offset = 0;
                k.done = false;
                k.stored.clear();
            }
        }
        if (auto e = save_cursor(cursor_, cursor_path_))
            return "cannot write the cursor: " + *e;
        return std::nullopt;
    }

    bool connect_until_done()
    {
        auto wait = std::chrono::milliseconds(250);
        for (int attempt = 1; !g_stop; ++attempt) {
            bool fatal = false;
            const auto error = nats_.connect(s_, fatal);
            if (!error)
                return true;
            if (fatal) {
                say("error: " + *error);
                return false;
            }
            if (attempt == 1 || attempt % 10 == 0)
                say(*error + "; retrying (attempt " + std::to_string(attempt) + ")");
            sleep_for(wait);
            wait = std::min<std::chrono::milliseconds>(wait * 2, s_.retry_max);
        }
        return false;
    }

    void sleep_for(std::chrono::milliseconds d)
    {
        const auto until = Clock::now() + d;
        while (!g_stop && Clock::now() < until)
            std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(50), d));
    }

    // Between tries of a request to the servers: the wait doubles up to
    // retry_max while they answer with errors. While the connection is down
    // (libnats reconnects by itself) it stays short, so that a backoff grown
    // during a long outage does not delay the catch-up once they are back.
    void back_off(std::chrono::milliseconds &wait)
    {
        if (!nats_.connected()) {
            wait = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(250), s_.retry_max);
            sleep_for(wait);
            return;
        }
        sleep_for(wait);
        wait = std::min<std::chrono::milliseconds>(wait * 2, s_.retry_max);
    }

    bool ensure_stream()
    {
        auto wait = std::chrono::milliseconds(250);
        for (int attempt = 1; !g_stop; ++attempt) {
            jsStreamInfo *si = nullptr;
            jsErrCode jerr = static_cast<jsErrCode>(0);
            natsStatus st = js_GetStreamInfo(&si, nats_.js(), s_.stream.c_str(), nullptr, &jerr);
            if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
                if (!s_.create_stream) {
                    say("error: stream \"" + s_.stream + "\" does not exist; create it (subjects \"" +
                        s_.subject_prefix + ".>\") or set create_stream = on");
                    return false;
                }
                jsStreamConfig sc;
                jsStreamConfig_Init(&sc);
                const std::string subject = s_.subject_prefix + ".>";
                const char *subjects[] = {subject.c_str()};
                sc.Name = s_.stream.c_str();
                sc.Subjects = subjects;
                sc.SubjectsLen = 1;
                sc.Storage = js_FileStorage;
                sc.Replicas = s_.replicas;
                sc.Duplicates = static_cast<int64_t>(s_.duplicate_window.count()) * 1000000;
                st = js_AddStream(&si, nats_.js(), &sc, nullptr, &jerr);
                if (st == NATS_OK)
                    say("created stream \"" + s_.stream + "\" (subjects " + subject + ", " +
                        std::to_string(s_.replicas) + " replica(s), duplicate window " +
                        std::to_string(s_.duplicate_window.count()) + " ms)");
            }
            if (st == NATS_OK) {
                // Its subjects must take ours, or every publish would fail.
                const std::string wanted = s_.subject_prefix + ".>";
                bool covered = false;
                std::string subjects;
                for (int i = 0; i < si->Config->SubjectsLen; ++i) {
                    const std::string subject = si->Config->Subjects[i];
                    covered = covered || subject == wanted || subject == ">";
                    subjects += (i ? ", " : "") + subject;
                }
                jsStreamInfo_Destroy(si);
                if (!covered)
                    say("error: stream \"" + s_.stream + "\" takes the subjects " + subjects + ", not " + wanted +
                        ": add " + wanted + " to it, or set subject_prefix");
                return covered;
            }
            if (attempt == 1 || attempt % 10 == 0)
                say("stream \"" + s_.stream + "\" not reachable: " + nats_error_text(st) + "; retrying");
            back_off(wait);
        }
        return false;
    }

    // Everything not acknowledged is forgotten; the stream is asked what it
    // holds of this node's messages; reading starts again at the cursor.
    bool resync()
    {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = s_.ack_wait.count() * 2;
        if (nats_.js())
            js_PublishAsyncComplete(nats_.js(), &po); // what is in flight ends, one way or the other
        take_acks();
        for (auto &[key, run] : runs_) {
            for (const Pending &p : run.pending) {
                if (p.acked && probation_) {
                    ++c_.unconfirmed; // not confirmed yet: the read-back decides again
                } else if (p.acked) {
                    cursor_.keys[key].add_stored(p.offset, p.end);
                    run.counted.insert(p.offset); // counted once already, as shipped or found stored
                    if (p.sent) // acknowledged at p.seq; confirm() checks it too
                        probation_found_[{key, p.offset}] = Found{p.end, p.seq};
                } else {
                    ++c_.unresolved;
                }
            }
            run.pending.clear();
        }
        pending_entries_ = 0;
        in_flight_ = 0;
        // Failures in a row (no leader yet, say) back off instead of spinning.
        const auto since_last = Clock::now() - last_resync_;
        resync_backoff_ = since_last < std::chrono::seconds(2)
                              ? std::min<std::chrono::milliseconds>(
                                    std::max(resync_backoff_ * 2, std::chrono::milliseconds(100)), s_.retry_max)
                              : std::chrono::milliseconds(0);
        sleep_for(resync_backoff_);
        for (auto &src : sources_) {
            drop_reader(src);
            src.buffer.clear();
        }
        failed_ = false;
        auto wait = std::chrono::milliseconds(250);
        while (!g_stop) {
            if (!nats_.connected()) {
                back_off(wait);
                continue;
            }
            // Read back before anything is sent again: the server's duplicate
            // window alone is not enough (an outage may outlast it, and a
            // leader elected mid-publish may not know every id yet).
            if (auto error = scan_stream()) {
                say("cannot read back the stream yet: " + *error + "; retrying");
                back_off(wait);
                continue;
            }
            ++c_.resyncs;
            last_resync_ = Clock::now();
            resync_needed_ = false;
            dirty_ = true;
            probation_ = true; // what the read-back found, and acks from now on, wait for confirm()
            confirm_at_ = last_resync_ + s_.confirm_after;
            return true;
        }
        return false;
    }

    // Waits (up to 10 s) until the stream has a leader, every replica is
    // current and (with `still`) its last sequence holds still: a leader
    // elected a moment ago may not have applied every committed message yet,
    // and a read-back from it would miss them. Returns the last sequence.
    std::optional<std::string> settle(std::uint64_t &last, bool still = true)
    {
        const auto until = Clock::now() + std::chrono::seconds(10);
        std::uint64_t previous = UINT64_MAX;
        for (;;) {
            jsStreamInfo *si = nullptr;
            jsErrCode jerr = static_cast<jsErrCode>(0);
            const natsStatus st = js_GetStreamInfo(&si, nats_.js(), s_.stream.c_str(), nullptr, &jerr);
            if (st != NATS_OK)
                return "stream info: " + nats_error_text(st);
            last = si->State.LastSeq;
            bool current = !si->Cluster || (si->Cluster->Leader && *si->Cluster->Leader);
            for (int i = 0; si->Cluster && i < si->Cluster->ReplicasLen; ++i)
                current = current && si->Cluster->Replicas[i]->Current && !si->Cluster->Replicas[i]->Offline;
            jsStreamInfo_Destroy(si);
            if ((current && (!still || last == previous)) || Clock::now() >= until || g_stop)
                return std::nullopt;
            previous = current ? last : UINT64_MAX;
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
    }

    // This node's messages after scan_from: their ranges become "stored".
    // An audit also deletes every copy of an id after the first.
    std::optional<std::string> scan_stream()
    {
        std::uint64_t last = 0;
        if (auto error = settle(last))
            return error;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> first_seq; // audit: (key, offset) -> seq
        std::set<std::uint64_t> extra_copies;
        std::uint64_t found = 0;
        probation_from_ = cursor_.scan_from + 1;
        if (last > cursor_.scan_from) {
            StreamRead r;
            r.stream = s_.stream;
            r.subject = s_.subject_prefix + "." + s_.node + ".>";
            r.from = cursor_.scan_from + 1;
            r.headers_only = true;
            r.wait_ms = std::max<std::int64_t>(5000, 2 * s_.ack_wait.count());
            auto error = read_stream(nats_.js(), r, [&](natsMsg *m, std::uint64_t seq) {
                const char *id = nullptr, *size = nullptr;
                std::uint64_t key = 0, offset = 0;
                const bool ours = natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id && parse_id(id, key, offset);
                if (ours && o_.audit && !audited_) {
                    const auto [it, fresh] = first_seq.try_emplace({key, offset}, seq);
                    // A message delivered twice is one copy: only another
                    // sequence is a second one.
                    if (!fresh && it->second != seq && extra_copies.insert(seq).second) {
                        say("audit: " + std::string(id) + " is stored at sequence " + std::to_string(it->second) +
                            " and again at " + std::to_string(seq) + "; deleting the second");
                    }
                }
                if (ours && natsMsgHeader_Get(m, "Nats-Msg-Size", &size) == NATS_OK && size) {
                    KeyState &k = cursor_.keys[key];
                    if (offset >= k.offset) {
                        const std::uint64_t end = offset + std::stoull(size) + 1;
                        k.add_stored(offset, end);
                        probation_found_[{key, offset}] = Found{end, seq};
                        ++found;
                    }
                }
            });
            if (error)
                return error;
        }
        for (const std::uint64_t seq : extra_copies) {
            const natsStatus del = js_DeleteMsg(nats_.js(), s_.stream.c_str(), seq, nullptr, &jerr);
            if (del == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
                continue; // deleted already (an audit that was cut short)
            if (del != NATS_OK)
                return "deleting a second copy (sequence " + std::to_string(seq) + "): " + nats_error_text(del);
            ++c_.copies_deleted;
        }
        if (o_.audit && !audited_) {
            audited_ = true;
            say("audit: " + std::to_string(first_seq.size()) + " record(s) of this node in the stream, " +
                std::to_string(extra_copies.size()) + " second cop(ies) deleted; records the stream lacks follow");
        }
        for (auto &[key, run] : runs_)
            run.floor_seq = last;
        epoch_floor_ = last;
        if (found)
            say("read back " + std::to_string(found) + " message(s) of this node past the cursor: not sent again");
        return std::nullopt;
    }

    // Ends the probation that follows a resync. A server can give up a
    // message it acknowledged, or that a read-back saw, when a leader elected
    // with a stale store takes over its sequence numbers (nats-server 2.9
    // does so after the whole cluster restarts). So until a second read of
    // the stream, once its replicas are current, finds them, such records
    // stay ahead of the cursor and nothing is saved: the records acknowledged
    // since the resync, and the stored ranges it added (found by its
    // read-back, or acknowledged before it). What the read lacks is taken out
    // of the stored ranges and sent again (through a resync). Returns false
    // when the stream cannot be read yet (tried again later).
    bool confirm()
    {
        std::uint64_t last = 0;
        if (settle(last, false))
            return false;
        take_acks(); // acks that came in while the replicas caught up are checked too
        if (failed_)
            return true; // a failure first: the resync decides
        // Records of this probation at a sequence this read covers (an ack
        // past `last` came once the replicas were current): each must be
        // found. Records older than the read-back (confirmed before, or
        // read from the saved cursor) are not looked for here.
        const auto covered = [&](std::uint64_t seq) { return seq >= probation_from_ && seq <= last; };
        // (key, offset) -> seen: every record sent in this epoch (an ack
        // may still come in during the read), and what the read-backs found.
        std::map<std::pair<std::uint64_t, std::uint64_t>, bool> seen;
        for (auto &[key, run] : runs_)
            for (const Pending &p : run.pending)
                if (p.sent)
                    seen.emplace(std::pair{key, p.offset}, false);
        for (const auto &[at, f] : probation_found_)
            if (covered(f.seq))
                seen.emplace(at, false);
        if (!seen.empty() && last >= probation_from_) {
            StreamRead r;
            r.stream = s_.stream;
            r.subject = s_.subject_prefix + "." + s_.node + ".>";
            r.from = probation_from_;
            r.headers_only = true;
            r.wait_ms = std::max<std::int64_t>(5000, 2 * s_.ack_wait.count());
            auto error = read_stream(nats_.js(), r, [&](natsMsg *m, std::uint64_t) {
                const char *id = nullptr;
                std::uint64_t key = 0, offset = 0;
                if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id && parse_id(id, key, offset))
                    if (const auto it = seen.find({key, offset}); it != seen.end())
                        it->second = true;
            });
            if (error) {
                say("cannot confirm what the stream holds yet: " + *error + "; retrying");
                return false;
            }
        }
        take_acks(); // acks that came in during the read are checked too
        if (failed_)
            return true;
        std::uint64_t missing = 0; // records, each once
        for (auto &[key, run] : runs_) {
            for (Pending &p : run.pending) {
                if (!p.acked)
                    continue;
                const auto found = probation_found_.find({key, p.offset});
                const bool check = p.sent ? covered(p.seq) : found != probation_found_.end() && covered(found->second.seq);
                const auto it = seen.find({key, p.offset});
                if (!check || it == seen.end() || it->second)
                    continue;
                // Counted once as shipped or found stored; counted again when
                // sent again or found again.
                p.acked = false;
                cursor_.keys[key].remove_stored(p.offset, p.end);
                run.counted.erase(p.offset);
                ++c_.unconfirmed;
                ++missing;
                it->second = true; // handled
            }
        }
        for (const auto &[at, f] : probation_found_) {
            const auto it = seen.find(at);
            if (it == seen.end() || it->second)
                continue; // not covered by this read, seen, or handled above
            it->second = true;
            cursor_.keys[at.first].remove_stored(at.second, f.end);
            // One acknowledged before the resync was counted then; the files
            // have not reached it again yet, so it is not in `pending`.
            if (runs_[at.first].counted.erase(at.second) != 0)
                ++c_.unconfirmed;
            ++missing;
        }
        probation_found_.clear();
        probation_ = false;
        dirty_ = true;
        if (missing != 0) {
            say("the stream no longer holds " + std::to_string(missing) + " record(s) it acknowledged or a read-back "
                "saw: a server gave them up; reading back the stream and sending them again");
            failed_ = true;
            return true;
        }
        for (auto &[key, run] : runs_)
            advance(key, run);
        return true;
    }

    void take_acks()
    {
        nats_.take_acks(acks_);
        handle_acks(acks_);
    }

    void handle_acks(const std::vector<Nats::Ack> &acks)
    {
        bool newly_acked = false;
        for (const auto &a : acks) {
            if (!a.ok) {
                ++c_.failures;
                if (!failed_)
                    say("publish failed: " + a.error + " (" + a.id + "); reading back the stream before going on");
                failed_ = true;
                continue;
            }
            if (!a.ours)
                continue;
            auto run = runs_.find(a.key);
            if (run == runs_.end())
                continue; // an ack from before a resync, for a record no longer pending
            auto &pending = run->second.pending;
            const auto p = std::lower_bound(pending.begin(), pending.end(), a.offset,
                                            [](const Pending &q, std::uint64_t offset) { return q.offset < offset; });
            if (p == pending.end() || p->offset != a.offset)
                continue;
            if (!p->acked && a.duplicate && !stored_as(a.id, a.seq)) {
                // A "duplicate" whose sequence does not hold this record: the
                // server remembered an id it never stored (seen around leader
                // changes). The read-back decides.
                ++c_.false_duplicates;
                if (!failed_)
                    say("the server called " + a.id + " a duplicate of sequence " + std::to_string(a.seq) +
                        ", which does not hold it; reading back the stream before going on");
                failed_ = true;
                continue;
            }
            if (!p->acked) {
                p->acked = true;
                p->seq = a.seq;
                newly_acked = true;
                in_flight_ -= p->sent && in_flight_ > 0 ? 1 : 0;
                ++c_.acked;
                c_.bytes += p->end - p->offset - 1;
                if (a.duplicate)
                    ++c_.duplicates;
            }
            advance(a.key, run->second);
        }
        if (newly_acked)
            last_ack_ = Clock::now();
    }

    // Whether stream sequence `seq` holds the message with id `id`.
    bool stored_as(const std::string &id, std::uint64_t seq)
    {
        natsMsg *m = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        if (js_GetMsg(&m, nats_.js(), s_.stream.c_str(), seq, nullptr, &jerr) != NATS_OK)
            return false;
        const char *stored_id = nullptr;
        const bool same = natsMsgHeader_Get(m, "Nats-Msg-Id", &stored_id) == NATS_OK && stored_id && id == stored_id;
        natsMsg_Destroy(m);
        return same;
    }

    // Every record read and not yet behind the cursor counts against
    // max_pending, found stored or not: that bounds memory. Records come in
    // file order (ship_line skips what is already tracked).
    void track(KeyRun &run, const Pending &p)
    {
        run.pending.push_back(p);
        ++pending_entries_;
    }

    void advance(std::uint64_t key, KeyRun &run)
    {
        if (probation_)
            return; // held until confirm()
        KeyState &k = cursor_.keys[key];
        while (!run.pending.empty() && run.pending.front().acked && run.pending.front().offset == k.offset) {
            k.offset = run.pending.front().end;
            run.floor_seq = std::max(run.floor_seq, run.pending.front().seq);
            run.pending.pop_front();
            --pending_entries_;
            dirty_ = true;
        }
        k.trim();
    }

    // Reads what the files hold and publishes it, up to max_pending in
    // flight. True when something happened.
    bool read_and_publish()
    {
        bool progressed = false;
        for (auto &src : sources_) {
            if (src.broken)
                continue;
            if (!src.reader && !open_next(src))
                continue;
            char buf[65536];
            while (pending_entries_ < s_.max_pending && !failed_) {
                // Whole lines in the buffer first.
                std::size_t start = 0;
                for (std::size_t nl; pending_entries_ < s_.max_pending && !failed_ &&
                                     (nl = src.buffer.find('\n', start)) != std::string::npos;
                     start = nl + 1) {
                    ship_line(src, src.next + start, std::string_view(src.buffer).substr(start, nl - start));
                    progressed = true;
                }
                src.buffer.erase(0, start);
                src.next += start;
                if (src.buffer.find('\n') != std::string::npos)
                    break; // max_pending reached
                const long n = src.reader->read(buf, sizeof buf);
                if (n < 0) {
                    say("error reading \"" + src.active.name + "\": " + src.reader->error);
                    drop_reader(src);
                    break;
                }
                if (n == 0) {
                    at_end(src);
                    break;
                }
                src.buffer.append(buf, static_cast<std::size_t>(n));
                progressed = true;
            }
        }
        return progressed;
    }

    // Returns true when the line was sent (false: it was found stored).
    bool ship_line(Source &src, std::uint64_t offset, std::string_view line)
    {
        const std::uint64_t key = src.active.key;
        KeyRun &run = runs_[key];
        KeyState &k = cursor_.keys[key];
        const std::uint64_t end = offset + line.size() + 1;
        if (offset < k.offset)
            return false; // before the cursor (a reread after a resync)
        if (!run.pending.empty() && offset < run.pending.back().end)
            return false; // in flight already (a file reopened after a read error)
        if (const auto stored_end = k.stored_at(offset); stored_end && *stored_end >= end) {
            track(run, Pending{offset, end, 0, true, false});
            if (run.counted.erase(offset) == 0)
                ++c_.found_stored; // not one this process saw acknowledged
            advance(key, run);
            return false;
        }
        id_.resize(s_.node.size() + 40);
        id_.resize(format_id(id_.data(), s_.node, key, offset));
        natsMsg *msg = nullptr;
        natsStatus st = natsMsg_Create(&msg, subject_of(src, record_type(line, src.spec->format, src.spec->only_type)),
                                       nullptr, line.data(), static_cast<int>(line.size()));
        if (st == NATS_OK)
            st = natsMsgHeader_Set(msg, "Nats-Msg-Id", id_.c_str());
        if (st == NATS_OK)
            st = natsMsgHeader_Set(msg, "Mtalog-Node", s_.node.c_str());
        if (st == NATS_OK)
            st = natsMsgHeader_Set(msg, "Mtalog-Format", src.spec->format.c_str());
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = s_.ack_wait.count();
        if (st == NATS_OK)
            st = js_PublishMsgAsync(nats_.js(), &msg, &po);
        if (st != NATS_OK) {
            natsMsg_Destroy(msg);
            ++c_.failures;
            if (!failed_)
                say("publish failed: " + nats_error_text(st) + "; reading back the stream before going on");
            failed_ = true;
            return false;
        }
        track(run, Pending{offset, end, 0, false, true});
        ++c_.published;
        ++in_flight_;
        if (first_publish_ == Clock::time_point{})
            first_publish_ = Clock::now();
        if (src.behind_since == Clock::time_point{})
            src.behind_since = Clock::now();
        return true;
    }

    // Every reader is dropped here: what the last listing said about the
    // files no longer holds once one was open (see caught_up).
    static void drop_reader(Source &src)
    {
        src.reader.reset();
        src.all_done = false;
    }

    // "<prefix>.<node>.<type>", made once per file and type.
    const char *subject_of(Source &src, std::string_view type)
    {
        for (const auto &[t, subject] : src.subjects)
            if (t == type)
                return subject.c_str();
        src.subjects.emplace_back(type, s_.subject_prefix + "." + s_.node + "." + std::string(type));
        return src.subjects.back().second.c_str();
    }

    // The active file has no more bytes for now.
    void at_end(Source &src)
    {
        const KeyRun &run = runs_[src.active.key];
        const auto now_state = src.reader->plain_now();
        if (now_state && now_state->size < src.reader->position()) {
            say("error: \"" + src.active.name + "\" shrank from " + std::to_string(src.reader->position()) + " to " +
                std::to_string(now_state->size) +
                " bytes while being shipped: truncating a log file in place (logrotate's copytruncate) can lose "
                "records; use create (config/logrotate.mtalog). Shipping of \"" +
                src.spec->path + "\" stopped");
            src.broken = true;
            drop_reader(src);
            return;
        }
        bool finished = !now_state; // a compressed file is complete
        if (now_state) {
            struct stat st {};
            const bool replaced =
                ::stat(src.spec->path.c_str(), &st) != 0 || st.st_ino != src.active.ino || st.st_dev != src.active.dev;
            const auto idle = std::chrono::nanoseconds(now_ns() - now_state->mtime_ns);
            finished = replaced && idle >= s_.rotated_idle;
        }
        if (run.pending.empty() && src.buffer.empty())
            src.behind_since = {};
        if (!finished)
            return;
        if (!src.buffer.empty() && !src.warned_partial) {
            say("warning: \"" + src.active.name + "\" ends in " + std::to_string(src.buffer.size()) +
                " bytes without a newline (a record cut by a crash): not shipped");
            src.warned_partial = true;
        }
        if (!run.pending.empty())
            return; // done once every record is acknowledged
        cursor_.keys[src.active.key].done = true;
        dirty_ = true;
        drop_reader(src);
        src.buffer.clear();
        src.next_list = {};
    }

    static std::int64_t now_ns()
    {
        timespec ts{};
        clock_gettime(CLOCK_REALTIME, &ts);
        return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
    }

    // Opens the oldest file of `src` not yet shipped to its end.
    bool open_next(Source &src)
    {
        const auto now = Clock::now();
        if (now < src.next_list)
            return false;
        src.next_list = now + std::chrono::milliseconds(200);
        src.all_done = false;
        const auto candidates = list_candidates(src.spec->path, src.spec->header, src.cache);
        // One key, one file: a plain file and its compressed copy share it,
        // two files that begin with the same record cannot be told apart.
        for (std::size_t i = 0; i < candidates.size(); ++i)
            for (std::size_t j = i + 1; j < candidates.size(); ++j)
                if (candidates[i].key == candidates[j].key && candidates[i].encoding == candidates[j].encoding) {
                    say("error: \"" + candidates[i].name + "\" and \"" + candidates[j].name +
                        "\" begin with the same record, so they cannot be told apart; move one away. Shipping of \"" +
                        src.spec->path + "\" stopped");
                    src.broken = true;
                    return false;
                }
        src.open_failed = false;
        for (const Candidate &c : candidates) {
            KeyState &k = cursor_.keys[c.key];
            if (k.path.empty())
                k.path = src.spec->path;
            if (k.done) {
                // A writer that had the file open before it was renamed (an
                // Exim delivery, a sink that could not create the new file)
                // may still append: such records are shipped too.
                if (c.encoding != Encoding::plain || c.size <= k.offset)
                    continue;
                say("\"" + c.name + "\" grew after it was finished: shipping the " +
                    std::to_string(c.size - k.offset) + " new bytes");
                k.done = false;
            }
            std::string error;
            auto reader = open_listed(c, src.spec->path, src.spec->header, error);
            if (!reader) {
                if (error == "replaced since it was listed") {
                    src.next_list = {}; // list again at once
                    return false;
                }
                // Others after it may still be shipped; this one is tried again later.
                say("cannot open \"" + c.name + "\": " + error);
                src.next_list = now + s_.retry_max;
                src.open_failed = true;
                continue;
            }
            if (k.offset == 0 && !src.spec->header.empty()) {
                std::string head(src.spec->header.size() + 65536, '\0');
                long got = 0;
                while (got < static_cast<long>(head.size())) {
                    const long n = reader->read(head.data() + got, head.size() - static_cast<std::size_t>(got));
                    if (n <= 0)
                        break;
                    got += n;
                }
                head.resize(static_cast<std::size_t>(got));
                k.offset = header_length(head, src.spec->header);
                reader = open_listed(c, src.spec->path, src.spec->header, error);
                if (!reader) {
                    src.next_list = {};
                    return false;
                }
            }
            if (!reader->skip_to(k.offset)) {
                say("error: \"" + c.name + "\" holds fewer bytes than were already shipped from it (" +
                    std::to_string(k.offset) + "): it was truncated or replaced; shipping of \"" + src.spec->path +
                    "\" stopped");
                src.broken = true;
                return false;
            }
            src.reader = std::move(reader);
            src.active = c;
            src.next = k.offset;
            src.buffer.clear();
            src.warned_partial = false;
            src.all_done = false;
            runs_[c.key].floor_seq = std::max(runs_[c.key].floor_seq, epoch_floor_);
            return true;
        }
        src.all_done = !src.open_failed; // every file listed is finished
        return false;
    }

    bool caught_up()
    {
        if (pending_entries_ != 0 || failed_ || resync_needed_ || probation_)
            return false; // (--once waits for the confirmation)
        for (auto &src : sources_) {
            if (src.broken)
                continue;
            if (src.reader) {
                const auto n = src.reader->plain_now();
                if (!n || n->size > src.reader->position() || !src.buffer.empty())
                    return false;
            } else if (!src.all_done) {
                return false; // nothing open, and the last listing left something to open
            }
            if (src.open_failed)
                return false; // a file older than the one open could not be opened yet
        }
        return true;
    }

    void save()
    {
        if (probation_)
            return; // nothing unconfirmed reaches the disk (dirty_ stays set)
        // scan_from: no message of this node past it is unknown here.
        std::uint64_t scan_from = UINT64_MAX, highest = cursor_.scan_from;
        for (const auto &[key, run] : runs_) {
            highest = std::max(highest, run.floor_seq);
            bool open_past_offset = false;
            for (const Pending &p : run.pending)
                open_past_offset = open_past_offset || !p.acked || p.sent;
            if (open_past_offset)
                scan_from = std::min(scan_from, run.floor_seq);
        }
        // While a failure is unresolved (records dropped from `pending` but
        // not yet read back), the last saved scan_from still covers them.
        if (!failed_ && !resync_needed_)
            cursor_.scan_from = scan_from == UINT64_MAX ? std::max(highest, epoch_floor_) : scan_from;
        // Done files that are gone need no memory (looked at once a minute:
        // it lists the directories).
        const bool prune = Clock::now() - last_prune_ >= std::chrono::seconds(60) || g_stop;
        if (prune)
            last_prune_ = Clock::now();
        for (auto it = cursor_.keys.begin(); prune && it != cursor_.keys.end();) {
            const bool live_key = std::any_of(sources_.begin(), sources_.end(),
                                              [&](const Source &s) { return s.reader && s.active.key == it->first; });
            if (it->second.done && !live_key && !key_exists(it->first, it->second.path))
                it = cursor_.keys.erase(it);
            else
                ++it;
        }
        if (auto e = save_cursor(cursor_, cursor_path_)) {
            say("error: cannot write the cursor (records are shipped, the next start reads the stream back): " +
                *e);
            return;
        }
        dirty_ = false;
    }

    bool key_exists(std::uint64_t key, const std::string &path)
    {
        for (auto &src : sources_)
            if (src.spec->path == path)
                for (const Candidate &c : list_candidates(path, src.spec->header, src.cache))
                    if (c.key == key)
                        return true;
        return false;
    }

    struct Lag {
        std::uint64_t records = 0, bytes = 0, seconds = 0;
    };

    Lag lag()
    {
        Lag l;
        for (const auto &[key, run] : runs_)
            for (const Pending &p : run.pending)
                if (!p.acked) {
                    ++l.records;
                    l.bytes += p.end - p.offset;
                }
        const auto now = Clock::now();
        for (auto &src : sources_) {
            if (src.reader) {
                if (const auto n = src.reader->plain_now(); n && n->size > src.reader->position()) {
                    l.bytes += n->size - src.reader->position();
                    l.records += count_lines(src.active.name, src.reader->position(), n->size);
                }
                l.bytes += src.buffer.size();
                l.records += static_cast<std::uint64_t>(std::count(src.buffer.begin(), src.buffer.end(), '\n'));
            }
            if (src.behind_since != Clock::time_point{})
                l.seconds = std::max<std::uint64_t>(
                    l.seconds, static_cast<std::uint64_t>(
                                   std::chrono::duration_cast<std::chrono::seconds>(now - src.behind_since).count()));
        }
        return l;
    }

    static std::uint64_t count_lines(const std::string &name, std::uint64_t from, std::uint64_t to)
    {
        const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        std::uint64_t lines = 0;
        char buf[65536];
        to = std::min<std::uint64_t>(to,
                                     from + (64u << 20)); // bounded work per report
        while (from < to) {
            const ssize_t n =
                ::pread(fd, buf, std::min<std::uint64_t>(sizeof buf, to - from), static_cast<off_t>(from));
            if (n <= 0)
                break;
            lines += static_cast<std::uint64_t>(std::count(buf, buf + n, '\n'));
            from += static_cast<std::uint64_t>(n);
        }
        ::close(fd);
        return lines;
    }

    void report_status()
    {
        const Lag l = lag();
        const bool warn = s_.lag_warning != 0 && l.records >= s_.lag_warning;
        say(std::string(warn ? "WARNING: lag above lag_warning (" + std::to_string(s_.lag_warning) + "): " : "") +
            "node " + s_.node + ": shipped " + std::to_string(c_.acked) + " (" + std::to_string(c_.duplicates) +
            " duplicates dropped by the server, " + std::to_string(c_.found_stored) + " found stored, " +
            std::to_string(c_.unresolved) + " unresolved by a failure, " + std::to_string(c_.failures) +
            " failed publishes), lag " + std::to_string(l.records) + " records, " + std::to_string(l.bytes) +
            " bytes, " + std::to_string(l.seconds) + " s");
        const nlohmann::json j = {{"node", s_.node},
                                  {"stream", s_.stream},
                                  {"shipped", c_.acked},
                                  {"published", c_.published},
                                  {"duplicates", c_.duplicates},
                                  {"found_stored", c_.found_stored},
                                  {"unresolved", c_.unresolved},
                                  {"failed_publishes", c_.failures},
                                  {"resyncs", c_.resyncs},
                                  {"false_duplicates", c_.false_duplicates},
                                  {"copies_deleted", c_.copies_deleted},
                                  {"unconfirmed", c_.unconfirmed},
                                  {"bytes_shipped", c_.bytes},
                                  {"lag_records", l.records},
                                  {"lag_bytes", l.bytes},
                                  {"lag_seconds", l.seconds},
                                  {"lag_warning", warn},
                                  {"connected", nats_.connected()}};
        if (auto e = write_atomically(status_path_, j.dump(1) + "\n", false))
            say("cannot write the status file: " + *e);
        if (!s_.metrics_file.empty())
            if (auto e = write_atomically(s_.metrics_file, metrics_text(l), false, 0644)) // node_exporter reads it
                say("cannot write metrics_file: " + *e);
    }

    // The same counts in Prometheus's text format, for node_exporter's
    // textfile collector (node and stream are tokens: no label escaping).
    [[nodiscard]] std::string metrics_text(const Lag &l) const
    {
        const std::string labels = "{node=\"" + s_.node + "\",stream=\"" + s_.stream + "\"} ";
        std::string out;
        const auto family = [&](const char *name, const char *type, const char *help, std::uint64_t value) {
            out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + labels +
                   std::to_string(value) + "\n";
        };
        family("mtalog_ship_records_shipped_total", "counter", "Records the stream acknowledged.", c_.acked);
        family("mtalog_ship_records_published_total", "counter", "Publishes sent, retries included.", c_.published);
        family("mtalog_ship_shipped_bytes_total", "counter", "Bytes of acknowledged records.", c_.bytes);
        family("mtalog_ship_failed_publishes_total", "counter", "Publishes that failed and were retried.", c_.failures);
        family("mtalog_ship_duplicates_dropped_total", "counter",
               "Publishes the server dropped as duplicates (de-duplicated by message id).", c_.duplicates);
        family("mtalog_ship_records_found_stored_total", "counter",
               "Records a read-back of the stream found stored after a failure, not sent again.", c_.found_stored);
        family("mtalog_ship_resyncs_total", "counter", "Read-backs of the stream after a failure.", c_.resyncs);
        family("mtalog_ship_copies_deleted_total", "counter", "Extra copies an audit deleted from the stream.",
               c_.copies_deleted);
        family("mtalog_ship_records_unconfirmed_total", "counter",
               "Records acknowledged or found stored that a later read of the stream did not confirm (looked up and "
               "sent again).",
               c_.unconfirmed);
        family("mtalog_ship_lag_records", "gauge", "Records in the files not yet acknowledged.", l.records);
        family("mtalog_ship_lag_bytes", "gauge", "Bytes in the files not yet acknowledged.", l.bytes);
        family("mtalog_ship_lag_seconds", "gauge", "Seconds the shipper has been behind its files (0: caught up).", l.seconds);
        family("mtalog_ship_connected", "gauge", "1 while connected to the servers.", nats_.connected() ? 1 : 0);
        return out;
    }

    void finish()
    {
        if (nats_.js()) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = s_.ack_wait.count();
            js_PublishAsyncComplete(nats_.js(), &po);
            take_acks();
            // Not before confirm_after: then the cursor stays where it was
            // last saved, and the next start reads back.
            if (probation_ && !failed_ && Clock::now() >= confirm_at_)
                confirm();
        }
        save();
    }

    const Settings &s_;
    const RunOptions &o_;
    Nats nats_;
    Cursor cursor_;
    std::string cursor_path_, status_path_;
    std::vector<Source> sources_;
    std::map<std::uint64_t, KeyRun> runs_;
    std::vector<Nats::Ack> acks_; // taken from nats_, reused
    std::string id_;              // the message id being built, reused
    Counters c_;
    bool failed_ = false;
    // Between a resync and confirm(): see confirm().
    bool probation_ = false;
    std::uint64_t probation_from_ = 0; // the first sequence the resync's read-back covered
    struct Found {
        std::uint64_t end, seq;
    };
    // (key, offset) -> what the read-backs of this probation found, and what
    // was acknowledged before its resync.
    std::map<std::pair<std::uint64_t, std::uint64_t>, Found> probation_found_;
    Clock::time_point confirm_at_{};
    std::size_t pending_entries_ = 0;
    std::size_t in_flight_ = 0; // published in this epoch, not acknowledged yet
    bool resync_needed_ = false;
    Clock::time_point last_resync_{};
    Clock::time_point last_prune_{};
    Clock::time_point first_publish_{}, last_ack_{};
    bool audited_ = false;
    std::chrono::milliseconds resync_backoff_{0};
    bool dirty_ = false;
    std::uint64_t epoch_floor_ = 0;
};

} // namespace

int run_shipper(const Settings &settings, const RunOptions &options)
{
    install_signals();
    int rc = 0;
    {
        Shipper shipper(settings, options);
        rc = shipper.work();
    }
    nats_CloseAndWait(5000); // no libnats thread outlives the objects it calls back
    return rc;
}

int run_tail(const Settings &s, const TailOptions &o)
{
    install_signals();
    {
        int rc = 0;
        Nats nats;
        bool fatal = false;
        if (auto e = nats.connect(s, fatal)) {
            say("error: " + *e);
            nats_Close();
            return 1;
        }
        const std::string subject = o.subject.empty() ? s.subject_prefix + ".>" : o.subject;
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = s.stream.c_str();
        natsSubscription *sub = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus st = js_PullSubscribe(&sub, nats.js(), subject.c_str(), o.durable.c_str(), nullptr, &so, &jerr);
        if (st != NATS_OK) {
            say("error: cannot read stream \"" + s.stream + "\": " + nats_error_text(st));
            nats_Close();
            return 1;
        }
        if (!o.out_dir.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(o.out_dir, ec);
            if (ec) {
                say("error: --out-dir \"" + o.out_dir + "\": " + ec.message());
                natsSubscription_Destroy(sub);
                nats.close();
                nats_Close();
                return 1;
            }
        }
        std::map<std::string, FILE *> files;
        long long seen = 0;
        auto last_record = Clock::now();
        while (!g_stop && (o.count < 0 || seen < o.count)) {
            natsMsgList list{};
            const int batch = static_cast<int>(o.count < 0 ? 256 : std::min<long long>(256, o.count - seen));
            st = natsSubscription_Fetch(&list, sub, batch, 1000, &jerr);
            if (st == NATS_TIMEOUT) {
                if (o.idle_ms >= 0 && Clock::now() - last_record >= std::chrono::milliseconds(o.idle_ms))
                    break;
                continue;
            }
            if (st != NATS_OK) {
                say("fetch: " + nats_error_text(st) + "; retrying");
                std::this_thread::sleep_for(std::chrono::milliseconds(500));
                continue;
            }
            int written = 0;
            for (int i = 0; i < list.Count; ++i) {
                natsMsg *m = list.Msgs[i];
                const std::string subj = natsMsg_GetSubject(m);
                const std::string_view data(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
                if (o.out_dir.empty()) {
                    const char *node = nullptr;
                    natsMsgHeader_Get(m, "Mtalog-Node", &node);
                    std::fprintf(stdout, "%s %.*s\n", node ? node : "-", static_cast<int>(data.size()), data.data());
                } else {
                    // <prefix>.<node>.<type> -> DIR/<node>.<type>.log
                    const auto last_dot = subj.rfind('.');
                    const auto node_dot = subj.rfind('.', last_dot - 1);
                    const std::string name = o.out_dir + "/" + subj.substr(node_dot + 1) + ".log";
                    FILE *&f = files[name];
                    if (!f)
                        f = std::fopen(name.c_str(), "a");
                    if (!f || std::fprintf(f, "%.*s\n", static_cast<int>(data.size()), data.data()) < 0) {
                        say("error: cannot write \"" + name + "\": " + std::strerror(errno) +
                            " (the record stays unacknowledged in the stream)");
                        rc = 1;
                        g_stop = 1;
                        break;
                    }
                }
                ++written;
            }
            // Acknowledged only once written out: a crash repeats, never loses.
            bool flushed = std::fflush(stdout) == 0;
            for (auto &[name, f] : files)
                flushed = flushed && f && std::fflush(f) == 0;
            for (int i = 0; flushed && i < written; ++i)
                natsMsg_Ack(list.Msgs[i], nullptr);
            seen += flushed ? written : 0;
            natsMsgList_Destroy(&list);
            last_record = Clock::now();
        }
        for (auto &[name, f] : files)
            if (f)
                std::fclose(f);
        // The acks must reach the server before the process ends, or the
        // durable consumer hands the records out again.
        if (const natsStatus flushed = nats.flush(5000); flushed != NATS_OK) {
            say("warning: the last acknowledgements may not have reached the server (" + nats_error_text(flushed) +
                "): the next tail of this consumer may print them again");
            rc = 1;
        }
        say("tail: " + std::to_string(seen) + " record(s)");
        // Everything is written and acknowledged: the process ends here
        // without tearing libnats down. Its teardown at exit crashed tail
        // now and then (SIGSEGV after this line, one run in a few dozen);
        // the system closes the socket.
        std::fflush(nullptr);
        std::_Exit(rc);
    }
}

} // namespace mtalog::ship
