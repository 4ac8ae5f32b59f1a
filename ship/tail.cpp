#include "tail.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <nats/nats.h>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "record_id.hpp"
#include "nats_link.hpp"
#include "signals.hpp"
#include "stream_read.hpp"
#include "tail_check.hpp"
#include "tail_outputs.hpp"
#include "tail_state.hpp"

namespace mtalog::ship {

namespace {

using Clock = std::chrono::steady_clock;

struct Totals {
    long long written = 0, copies = 0, redelivered = 0, foreign = 0, recovered = 0;
};

// The check against the stream runs this often, and lists at most this many
// records the consumer did not deliver per run.
constexpr auto kCheckEvery = std::chrono::seconds(10);
constexpr std::size_t kMaxRecovered = 4096;

// A test's SIGKILL at an exact point: MTALOG_SHIP_CRASH_AT=<name> ends the
// process there, as a kill would (test_ship's tail tests use it).
void crash_point(const char *name)
{
    if (const char *at = std::getenv("MTALOG_SHIP_CRASH_AT"); at && std::strcmp(at, name) == 0)
        std::_Exit(137);
}

std::int64_t unix_now()
{
    return static_cast<std::int64_t>(std::time(nullptr));
}

class Tail {
public:
    Tail(const Settings &s, const TailOptions &o) : s_(s), o_(o), link_(s), out_(o.out_dir) {}
    int run();

private:
    // Handles one batch; false when the output failed (the batch stays
    // unacknowledged). `from_stream`: messages read from the stream, not
    // delivered by the consumer (nothing to acknowledge).
    bool handle(natsMsgList &list, bool from_stream = false);
    // The check against the stream (tail_check.hpp): records the stream's
    // leader holds that the state has not seen are read from it and
    // written.
    enum class Checked { clean, wrote, unknown, failed }; // unknown: not now (said why); failed: the output
    Checked check_stream();
    natsStatus consumer_info(jsConsumerInfo *&ci);

    const Settings &s_;
    const TailOptions &o_;
    NatsLink link_;
    Outputs out_;
    TailState state_;
    std::string state_path_;
    std::string subject_;
    std::string said_check_; // the last error of a check, said once until it changes
    jsErrCode jerr_ = static_cast<jsErrCode>(0);
    std::set<std::uint64_t> recovered_;       // sequences the check wrote (the consumer may deliver them yet)
    Totals t_;
    int rc_ = 0;
};

bool Tail::handle(natsMsgList &list, bool from_stream)
{
    std::string text; // standard output's share of the batch
    const std::int64_t now = unix_now();
    // A file new to the state is recorded (with its length before this
    // batch) before anything of the batch is marked seen or written: a crash
    // in between cuts it back at the next start, and the batch, not
    // acknowledged, comes again and is written. (Saved after the marks, the
    // state would skip it as seen: lost.)
    bool new_outputs = false;
    const int takes = o_.count < 0 ? list.Count
                                   : static_cast<int>(std::min<long long>(list.Count, o_.count - t_.written));
    for (int i = 0; i < takes && !o_.out_dir.empty(); ++i)
        if (auto e = out_.open_output(Outputs::name_of(natsMsg_GetSubject(list.Msgs[i])), state_.outputs, new_outputs)) {
            say("error: " + *e + " (the record stays unacknowledged in the stream)");
            rc_ = 1;
            return false;
        }
    if (new_outputs) {
        if (auto e = state_.save(state_path_)) {
            say("error: " + *e);
            rc_ = 1;
            return false;
        }
        crash_point("tail-new-outputs-saved");
    }
    // With --count, what is past it stays unacknowledged.
    int taken = 0;
    for (; taken < list.Count && (o_.count < 0 || t_.written < o_.count); ++taken) {
        natsMsg *m = list.Msgs[taken];
        const std::string_view data(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
        const char *id = nullptr, *node_header = nullptr;
        natsMsgHeader_Get(m, "Mtalog-Node", &node_header);
        RecordId rid;
        std::string_view node;
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id && parse_id(id, rid, &node)) {
            if (state_.seen_before(node, rid.key, rid.offset, rid.offset + data.size() + 1, now)) {
                jsMsgMetaData *meta = nullptr;
                // Delivered again, or late: after the check read it from the stream.
                const bool again = natsMsg_GetMetaData(&meta, m) == NATS_OK &&
                                   (meta->NumDelivered > 1 || recovered_.erase(meta->Sequence.Stream) > 0);
                jsMsgMetaData_Destroy(meta);
                ++(again ? t_.redelivered : t_.copies);
                continue;
            }
        } else {
            ++t_.foreign; // not a record of mtalog-ship's: passed on as it is
        }
        if (o_.out_dir.empty()) {
            text.append(node_header ? node_header : "-").append(" ").append(data).push_back('\n');
        } else if (auto e = out_.append(Outputs::name_of(natsMsg_GetSubject(m)), data, state_.outputs, new_outputs)) {
            say("error: " + *e + " (the record stays unacknowledged in the stream)");
            rc_ = 1;
            return false;
        }
        ++t_.written;
        t_.recovered += from_stream ? 1 : 0;
    }
    std::optional<std::string> e = o_.out_dir.empty() ? write_stdout(text) : out_.commit(state_.outputs);
    if (!e)
        e = state_.save(state_path_);
    if (e) {
        say(*e == "the output was closed" ? "tail: the output was closed" : "error: " + *e);
        rc_ = *e == "the output was closed" ? 0 : 1;
        return false;
    }
    // Written, recorded, and only then acknowledged: a crash in between
    // repeats nothing (the state says what was written) and loses nothing.
    for (int i = 0; i < taken && !from_stream; ++i)
        natsMsg_Ack(list.Msgs[i], nullptr);
    return true;
}

// The durable's state, asked by name: libnats 3.4.1's
// natsSubscription_GetConsumerInfo fails ("Invalid Subscription") on a
// subscription bound to a consumer that already existed.
natsStatus Tail::consumer_info(jsConsumerInfo *&ci)
{
    return js_GetConsumerInfo(&ci, link_.js(), s_.stream.c_str(), o_.durable.c_str(), nullptr, &jerr_);
}

Tail::Checked Tail::check_stream()
{
    const auto say_once = [&](const std::string &e) {
        if (e != said_check_)
            say("tail: cannot check the stream now (" + e + "); checking again later");
        said_check_ = e;
        return Checked::unknown;
    };
    // The stream's state first: with the consumer owing nothing after it,
    // every record up to its last sequence has come.
    StreamState st;
    if (auto e = stream_state(link_.js(), s_.stream, st))
        return say_once(*e);
    if (!st.current)
        return say_once("the stream has no leader, or a replica is not current");
    jsConsumerInfo *ci = nullptr;
    if (const natsStatus is = consumer_info(ci); is != NATS_OK)
        return say_once(nats_error_text(is));
    const std::uint64_t owed = ci->NumPending + static_cast<std::uint64_t>(ci->NumAckPending);
    const std::uint64_t floor = ci->AckFloor.Stream;
    jsConsumerInfo_Destroy(ci);
    if (state_.checked > st.last_seq) {
        say("tail: the stream ends at sequence " + std::to_string(st.last_seq) + ", before what this tail checked (" +
            std::to_string(state_.checked) + "): checking it from its start");
        state_.checked = 0;
    }
    const std::uint64_t from = std::max(state_.checked + 1, st.first_seq);
    const std::uint64_t until = owed == 0 ? st.last_seq : std::min(st.last_seq, floor);
    if (until < from)
        return Checked::clean;
    UnseenRecords unseen;
    // Messages older than --forget-after are not compared: the state may
    // have forgotten their files, and would take them for new.
    const std::int64_t since_ns = (unix_now() - o_.forget_after_s) * 1000000000LL;
    if (auto e = find_unseen(link_.js(), link_.nc(), s_.stream, subject_, st, from, until, since_ns, state_,
                             kMaxRecovered, unseen))
        return say_once(*e);
    said_check_.clear();
    std::vector<natsMsg *> msgs;
    const auto release = [&] {
        for (natsMsg *m : msgs)
            natsMsg_Destroy(m);
    };
    for (const std::uint64_t seq : unseen.seqs) {
        natsMsg *m = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        const natsStatus gs = js_GetMsg(&m, link_.js(), s_.stream.c_str(), seq, nullptr, &jerr);
        if (gs == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
            continue; // deleted since
        if (gs != NATS_OK) {
            release();
            return say_once("sequence " + std::to_string(seq) + ": " + nats_error_text(gs));
        }
        msgs.push_back(m);
    }
    const long long before = t_.recovered;
    if (!msgs.empty()) {
        for (const std::uint64_t seq : unseen.seqs)
            recovered_.insert(seq);
        natsMsgList list{msgs.data(), static_cast<int>(msgs.size())};
        const bool ok = handle(list, true);
        release();
        if (!ok)
            return Checked::failed;
        say("tail: " + std::to_string(t_.recovered - before) + " record(s) the stream holds (sequences " +
            std::to_string(unseen.seqs.front()) + " to " + std::to_string(unseen.seqs.back()) +
            ") never came through the durable consumer \"" + o_.durable + "\": read from the stream's leader and written");
    }
    state_.checked = unseen.until;
    if (auto e = state_.save(state_path_)) {
        say("error: " + *e);
        rc_ = 1;
        return Checked::failed;
    }
    return t_.recovered > before ? Checked::wrote : Checked::clean;
}

int Tail::run()
{
    state_path_ = !o_.state.empty()       ? o_.state
                  : !o_.out_dir.empty()   ? o_.out_dir + "/.tail-" + o_.durable + ".state"
                                          : s_.state_dir + "/tail-" + o_.durable + ".state";
    if (!o_.out_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(o_.out_dir, ec);
        if (ec) {
            say("error: --out-dir \"" + o_.out_dir + "\": " + ec.message());
            return 1;
        }
    } else {
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(state_path_).parent_path(), ec);
    }
    std::string error;
    // One tail per output directory (another would cut back its files), and
    // per state file.
    const int lock = lock_state(o_.out_dir.empty() ? state_path_ : o_.out_dir + "/.tail", error);
    if (lock < 0) {
        say("error: " + error);
        return 1;
    }
    auto loaded = TailState::load(state_path_);
    if (auto *e = std::get_if<std::string>(&loaded)) {
        say("error: " + *e);
        return 1;
    }
    state_ = std::get<TailState>(std::move(loaded));
    if (!o_.out_dir.empty())
        if (auto e = out_.recover(state_.outputs)) {
            say("error: " + *e);
            return 1;
        }
    if (const std::size_t gone = state_.forget_unused(unix_now() - o_.forget_after_s))
        say("tail: forgot " + std::to_string(gone) + " file key(s) not seen for " +
            std::to_string(o_.forget_after_s / 86400) + " day(s)");
    bool fatal = false;
    if (auto e = link_.connect(fatal)) {
        say("error: " + *e);
        return 1;
    }
    subject_ = o_.subject.empty() ? s_.subject_prefix + ".>" : o_.subject;
    const std::string &subject = subject_;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = s_.stream.c_str();
    natsSubscription *sub = nullptr;
    jsErrCode &jerr = jerr_;
    // A stream electing a leader, or not there yet, answers with an error
    // for a while: tried again, with a back-off, until it works or a signal
    // says stop.
    std::string said_bind, said_info; // the last error said, each said once until it changes
    const auto bind = [&] {
        for (auto wait = std::chrono::milliseconds(250);; wait = std::min(wait * 2, std::chrono::milliseconds(5000))) {
            const natsStatus st =
                js_PullSubscribe(&sub, link_.js(), subject.c_str(), o_.durable.c_str(), nullptr, &so, &jerr);
            if (st == NATS_OK) {
                said_bind.clear();
                return true;
            }
            sub = nullptr;
            if (const std::string e = nats_error_text(st); e != said_bind) {
                say("cannot read stream \"" + s_.stream + "\" yet: " + e + "; retrying");
                said_bind = e;
            }
            for (auto left = wait; left.count() > 0 && !stop_requested(); left -= std::chrono::milliseconds(50))
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            if (stop_requested())
                return false;
        }
    };
    if (!bind())
        return 0;
    auto last_record = Clock::now();
    auto last_check = Clock::now();
    // The check against the stream, every kCheckEvery (not with --count,
    // which ends the read early by design).
    const auto check_due = [&](bool now) {
        if (o_.count >= 0 || (!now && Clock::now() - last_check < kCheckEvery))
            return Checked::clean;
        last_check = Clock::now();
        return check_stream();
    };
    bool said_owed = false;
    while (!stop_requested() && (o_.count < 0 || t_.written < o_.count)) {
        const int batch = static_cast<int>(o_.count < 0 ? 512 : std::min<long long>(512, o_.count - t_.written));
        // libnats 3.4.1's natsSubscription_Fetch overflows its result array
        // when the subscription already holds more than half a batch (fixed
        // in 3.9.0): messages a server sent after an earlier fetch gave up
        // wait there (and its status answers, a few). A subscription holding
        // more than a quarter batch is let go (the durable consumer stays,
        // and sends what it holds unacknowledged again after its ack wait)
        // and bound again.
        if (int held = 0; natsSubscription_GetPending(sub, &held, nullptr) != NATS_OK || held > batch / 4) {
            (void)link_.flush(2000); // the read loop is past it before it is freed
            natsSubscription_Destroy(sub);
            sub = nullptr;
            if (!bind())
                break;
            // What it held comes again after the consumer's ack wait: --idle
            // counts from then.
            if (jsConsumerInfo *ci = nullptr; consumer_info(ci) == NATS_OK) {
                last_record = std::max(last_record, Clock::now() + std::chrono::nanoseconds(ci->Config->AckWait));
                jsConsumerInfo_Destroy(ci);
            }
            continue;
        }
        natsMsgList list{};
        const natsStatus st = natsSubscription_Fetch(&list, sub, batch, 1000, &jerr);
        if (st != NATS_OK || list.Count < batch)
            (void)link_.flush(1000); // what the server sent late is in before the next look
        if (st == NATS_TIMEOUT) {
            if (check_due(false) == Checked::failed)
                break;
            if (o_.idle_ms >= 0 && Clock::now() - last_record >= std::chrono::milliseconds(o_.idle_ms)) {
                // Idle, unless the durable still has records for a reader:
                // unsent ones, or ones an earlier reader took and never
                // acknowledged (killed), which come again after its ack wait.
                // Not knowing is not idle: a failed question is asked again.
                jsConsumerInfo *ci = nullptr;
                if (const natsStatus is = consumer_info(ci); is != NATS_OK) {
                    if (is == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
                        say("error: the durable consumer \"" + o_.durable + "\" no longer exists (deleted?)");
                        rc_ = 1;
                        break;
                    }
                    if (const std::string e = nats_error_text(is); e != said_info) {
                        say("idle, but cannot ask the durable consumer what it still owes (" + e + "); asking again");
                        said_info = e;
                    }
                    continue;
                }
                said_info.clear();
                const std::uint64_t owed = ci->NumPending + static_cast<std::uint64_t>(ci->NumAckPending);
                jsConsumerInfo_Destroy(ci);
                if (owed == 0) {
                    // Checked against the stream before it ends: what the
                    // check found and wrote makes it go on.
                    // Not knowing is not idle either: asked again.
                    if (const Checked checked = check_due(true); checked != Checked::clean) {
                        if (checked == Checked::failed)
                            break;
                        if (checked == Checked::wrote)
                            last_record = Clock::now();
                        continue;
                    }
                    say("idle for " + std::to_string(o_.idle_ms) + " ms and the durable consumer owes nothing: ending");
                    break;
                }
                if (!said_owed) {
                    say("idle, but the durable consumer still owes " + std::to_string(owed) +
                        " record(s) (delivered earlier and not acknowledged): waiting for them");
                    said_owed = true;
                }
            }
            continue;
        }
        if (st != NATS_OK) {
            say("fetch: " + nats_error_text(st) + "; retrying");
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            continue;
        }
        const bool ok = handle(list);
        natsMsgList_Destroy(&list);
        if (!ok || check_due(false) == Checked::failed)
            break;
        last_record = Clock::now();
    }
    // The acks must reach the server before the process ends, or the
    // durable consumer hands the records out again (they are then skipped
    // as seen).
    if (const natsStatus flushed = link_.flush(5000); flushed != NATS_OK)
        say("warning: the last acknowledgements may not have reached the server (" + nats_error_text(flushed) +
            "): the next tail skips those records as seen");
    say("tail: " + std::to_string(t_.written) + " record(s) written, " + std::to_string(t_.copies) +
        " copies in the stream skipped, " + std::to_string(t_.redelivered) + " redelivered and skipped" +
        (t_.foreign ? ", " + std::to_string(t_.foreign) + " without a record id" : "") +
        (t_.recovered ? ", " + std::to_string(t_.recovered) + " read from the stream (the consumer never delivered them)"
                      : ""));
    return rc_;
}

} // namespace

int run_tail(const Settings &settings, const TailOptions &options)
{
    install_signals(Hangup::stop);
    const int rc = Tail(settings, options).run();
    // Everything is written and acknowledged: the process ends here without
    // tearing libnats down (its teardown at exit crashed now and then; the
    // system closes the socket).
    std::fflush(nullptr);
    std::_Exit(rc);
}

} // namespace mtalog::ship
