#include "rounds.hpp"

#include <chrono>
#include <cstdlib>
#include <utility>

#include "stream_read.hpp"

namespace mtalog::ship {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSettleMax = std::chrono::seconds(30);

} // namespace

Rounds::Rounds(NatsLink &link, const Settings &s) : link_(link), s_(s)
{
    thread_ = std::thread([this] { run(); });
}

Rounds::~Rounds()
{
    stop();
    if (thread_.joinable())
        thread_.join();
}

void Rounds::stop()
{
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
}

bool Rounds::idle() const
{
    std::lock_guard lock(mutex_);
    return phase_ == Phase::ready && !running_ && !requested_ && !done_;
}

void Rounds::request(std::uint64_t from, std::uint64_t until, std::uint64_t highest)
{
    {
        std::lock_guard lock(mutex_);
        requested_ = Request{from, until, highest};
    }
    cv_.notify_all();
}

std::optional<RoundDone> Rounds::take()
{
    std::lock_guard lock(mutex_);
    return std::exchange(done_, std::nullopt);
}

void Rounds::pause(std::chrono::milliseconds d)
{
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, d, [&] { return stop_.load(); });
}

bool Rounds::connect()
{
    auto wait = std::chrono::milliseconds(250);
    for (int attempt = 1; !stop_; ++attempt) {
        bool fatal = false;
        const auto error = link_.connect(fatal);
        if (!error)
            return true;
        if (fatal) {
            say("error: " + *error);
            return false;
        }
        if (attempt == 1 || attempt % 10 == 0)
            say(*error + "; retrying (attempt " + std::to_string(attempt) + ")");
        pause(wait);
        wait = std::min<std::chrono::milliseconds>(wait * 2, s_.retry_max);
    }
    return false;
}

// The stream exists (or is made) and takes <prefix>.>; false when that
// cannot be so (a config matter, not an outage).
bool Rounds::check_stream()
{
    auto wait = std::chrono::milliseconds(250);
    const std::string wanted = s_.subject_prefix + ".>";
    for (int attempt = 1; !stop_; ++attempt) {
        jsStreamInfo *si = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus st = js_GetStreamInfo(&si, link_.js(), s_.stream.c_str(), nullptr, &jerr);
        if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
            if (!s_.create_stream) {
                say("error: stream \"" + s_.stream + "\" does not exist; create it (subjects \"" + wanted +
                    "\") or set create_stream = on");
                return false;
            }
            jsStreamConfig sc;
            jsStreamConfig_Init(&sc);
            const char *subjects[] = {wanted.c_str()};
            sc.Name = s_.stream.c_str();
            sc.Subjects = subjects;
            sc.SubjectsLen = 1;
            sc.Storage = js_FileStorage;
            sc.Replicas = s_.replicas;
            sc.Duplicates = static_cast<int64_t>(s_.duplicate_window.count()) * 1000000;
            st = js_AddStream(&si, link_.js(), &sc, nullptr, &jerr);
            if (st == NATS_OK)
                say("created stream \"" + s_.stream + "\" (subjects " + wanted + ", " + std::to_string(s_.replicas) +
                    " replica(s), duplicate window " + std::to_string(s_.duplicate_window.count()) + " ms)");
        }
        if (st == NATS_OK) {
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
        pause(wait);
        wait = link_.connected() ? std::min<std::chrono::milliseconds>(wait * 2, s_.retry_max)
                                 : std::chrono::milliseconds(250);
    }
    return false;
}

RoundDone Rounds::round(const Request &q)
{
    const std::uint64_t from = q.from, until = q.until;
    RoundDone d;
    const auto start = Clock::now();
    // A leader elected a moment ago may not have applied every committed
    // message yet, and a replica behind may become leader: read only from
    // a stream whose online replicas are all current.
    StreamState state;
    bool made_again = false;
    for (const auto give_up_at = start + kSettleMax;;) {
        bool missing = false;
        if (auto e = stream_state(link_.js(), s_.stream, state, &missing)) {
            // Deleted under the shipper: made again (with create_stream); a
            // stream that went backwards is what the ledger then sees.
            if (!missing || !s_.create_stream || !check_stream())
                d.error = missing ? "stream \"" + s_.stream + "\" does not exist" : *e;
            else {
                made_again = true;
                continue;
            }
            return d;
        }
        // Caught up yet (a new leader applying what was committed), or gone
        // backwards? A stream made again is empty: nothing to wait for.
        const bool behind = state.last_seq < q.highest && !made_again;
        if (state.current && !behind)
            break;
        if (stop_) {
            d.error = "stopped";
            return d;
        }
        if (Clock::now() >= give_up_at) {
            if (state.current)
                break; // still below: it went backwards (the ledger sees that)
            d.error = "the stream has no leader, or a replica is not current";
            return d;
        }
        pause(std::chrono::milliseconds(300));
    }
    RoundResult &r = d.result;
    r.from = from;
    r.until = until;
    r.last = state.last_seq;
    r.first_seq = state.first_seq;
    r.first_time_ns = state.first_time_ns;
    r.limits = state.limits;
    d.leader = state.leader;
    if (state.last_seq >= from) {
        StreamRead read;
        read.stream = s_.stream;
        read.subject = s_.subject_prefix + "." + s_.node + ".>";
        read.from = from;
        read.until = std::min(until, state.last_seq); // what was stored after it began waits for the next round
        read.headers_only = true;
        read.wait_ms = std::max<std::int64_t>(5000, 2 * s_.ack_wait.count());
        read.stop = &stop_;
        read.nc = link_.nc();
        // A stream of one replica is read wherever it is (a single server's
        // consumer info names no server).
        read.on_server = state.replicas > 1 ? state.leader : "";
        read.replicas = state.replicas;
        d.error = read_stream(link_.js(), read, [&](natsMsg *m, std::uint64_t seq) {
            const char *id = nullptr, *size = nullptr;
            RecordId rid;
            ++r.messages;
            if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !id || !parse_id(id, rid) ||
                natsMsgHeader_Get(m, "Nats-Msg-Size", &size) != NATS_OK || !size)
                return;
            const std::uint64_t end = rid.offset + std::strtoull(size, nullptr, 10) + 1;
            if (!r.found[rid.key].add(rid.offset, end) && d.copies.size() < 100000)
                d.copies.push_back(rid);
            auto [it, fresh] = r.seqs.try_emplace(rid.key, seq, seq);
            it->second.first = std::min(it->second.first, seq);
            it->second.second = std::max(it->second.second, seq);
        });
        // What a replica that is no longer the leader holds is not what the
        // stream holds: the round is read again (and so when that cannot be
        // told: elections make stream info fail).
        if (StreamState after; !d.error && !read.on_server.empty()) {
            if (auto e = stream_state(link_.js(), s_.stream, after))
                d.error = "cannot tell whether the stream's leader changed during the read: " + *e;
            else if (after.leader != state.leader)
                d.error = "the stream's leader changed during the read (" + state.leader + " to " +
                          (after.leader.empty() ? std::string("none") : after.leader) + ")";
        }
    }
    d.took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    return d;
}

void Rounds::run()
{
    if (!connect() || !check_stream()) {
        phase_ = stop_ ? Phase::connecting : Phase::failed;
        return;
    }
    phase_ = Phase::ready;
    for (;;) {
        Request q{};
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return stop_ || requested_.has_value(); });
            if (stop_)
                return;
            q = *std::exchange(requested_, std::nullopt);
            running_ = true;
        }
        RoundDone d = round(q);
        std::lock_guard lock(mutex_);
        running_ = false;
        done_ = std::move(d);
    }
}

} // namespace mtalog::ship
