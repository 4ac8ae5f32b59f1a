#include "shipper.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <set>
#include <vector>

#include "cursor.hpp"
#include "follower.hpp"
#include "ledger.hpp"
#include "nats_link.hpp"
#include "rounds.hpp"
#include "signals.hpp"
#include "state_dir.hpp"
#include "status.hpp"

namespace mtalog::ship {

namespace {

Millis now_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

constexpr Millis kSaveEvery = 200;
constexpr Millis kPruneEvery = 60000;
constexpr unsigned kMissedPrunes = 10; // a key whose files are gone this long is forgotten
constexpr std::size_t kCopiesRemembered = 1000000;

class Shipper {
public:
    Shipper(const Settings &s, const RunOptions &o)
        : s_(s), o_(o), ledger_(s.reconcile_window.count()), link_(s), cursor_path_(s.state_dir + "/cursor.json"),
          window_(s.max_pending)
    {
    }

    int work();

private:
    std::optional<std::string> load_state();
    void take_acks(Millis now);
    void incident(Millis now, const std::string &why);
    void publish_failed(Millis now, const std::string &error);
    void apply_round(RoundDone &d, Millis now);
    void maybe_round(Rounds &rounds, Millis now);
    bool pump(Millis now);
    bool ship(std::size_t source, std::uint64_t key, std::uint64_t offset, std::string_view line);
    const char *subject_of(std::size_t source, std::string_view type);
    void save(Millis now, bool force);
    void prune();
    Lag lag(Millis now);
    void report(Millis now);
    [[nodiscard]] bool caught_up(Millis now);
    void say_stopped();

    const Settings &s_;
    const RunOptions &o_;
    Ledger ledger_;
    NatsLink link_;
    Cursor cursor_;
    std::string cursor_path_;
    std::vector<Follower> followers_;
    std::vector<std::vector<std::pair<std::string, std::string>>> subjects_; // per source: type -> subject
    Counters c_;
    std::vector<Ack> acks_;
    std::string id_;
    bool dirty_ = false;
    Millis last_save_ = 0, last_prune_ = 0, last_status_ = 0, behind_since_ = 0;
    Millis last_round_ = 0, next_round_at_ = 0, round_backoff_ = 0, last_incident_say_ = -1000000;
    Millis last_incident_ = -1000000;
    std::uint64_t highest_at_request_ = 0;
    Millis asked_at_ = 0;
    std::string leader_;
    bool first_round_ = true;
    std::set<std::pair<std::uint64_t, std::uint64_t>> copies_seen_;
    Millis first_publish_ = 0, last_ack_ = 0;
    Millis publish_after_ = 0, fail_backoff_ = 0;
    std::size_t window_ = SIZE_MAX; // publishes in flight at most: max_pending, less after failures
};

std::optional<std::string> Shipper::load_state()
{
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
        // Every file still on disk is read again, against every message of
        // this node from the stream's first one.
        cursor_.scan_from = 0;
        for (auto &[key, e] : cursor_.files) {
            e.final_offset = 0;
            e.done_end.reset();
        }
        for (auto &[key, e] : cursor_.legacy)
            e = LegacyEntry{e.path, 0, false};
    }
    for (const auto &[key, e] : cursor_.files) {
        ledger_.restore(key, e.final_offset);
        for (const auto &[start, end] : e.skipped)
            ledger_.skip(key, start, end);
    }
    ledger_.set_scan_from(cursor_.scan_from); // the first round reads back from there
    if (auto e = save_cursor(cursor_, cursor_path_))
        return "cannot write the cursor: " + *e;
    return std::nullopt;
}

void Shipper::incident(Millis now, const std::string &why)
{
    // Failures in a burst (every publish in flight when a leader dies) are
    // one incident.
    if (now - last_incident_ >= 1000)
        ++c_.incidents;
    last_incident_ = now;
    ledger_.incident(now);
    if (now - last_incident_say_ >= 1000) {
        say(why + "; records acknowledged in the last " + std::to_string(s_.reconcile_window.count() / 1000) +
            " s will be looked for in the stream again");
        last_incident_say_ = now;
    }
}

void Shipper::take_acks(Millis now)
{
    NatsLink::take_acks(acks_);
    bool failed = false, answered = false;
    std::string error;
    for (const Ack &a : acks_) {
        if (!a.ok) {
            ++c_.failed;
            if (a.ours)
                ledger_.failed(a.record.key, a.record.offset);
            if (!failed)
                error = a.error;
            failed = true;
            continue;
        }
        if (!a.ours)
            continue;
        if (const std::uint64_t length = ledger_.acked(a.record.key, a.record.offset, a.seq, now)) {
            ++c_.shipped;
            c_.bytes += length - 1;
            c_.duplicates += a.duplicate ? 1 : 0;
            last_ack_ = now;
            fail_backoff_ = 0;
            answered = true;
        }
    }
    if (answered)
        window_ = std::min<std::size_t>(s_.max_pending, window_ * 2);
    if (failed)
        publish_failed(now, error);
}

// Nothing is sent again before a round; and failures in a row (a stream
// that refuses the publishes) wait longer and longer, up to retry_max.
void Shipper::publish_failed(Millis now, const std::string &error)
{
    incident(now, "publish failed: " + error + "; nothing is sent again before a read of the stream");
    fail_backoff_ = std::clamp<Millis>(fail_backoff_ * 2, 100, s_.retry_max.count());
    publish_after_ = now + fail_backoff_;
    window_ = 1; // then doubled by each batch of answers: a refusing stream sees one publish per try
}

void Shipper::apply_round(RoundDone &d, Millis now)
{
    if (d.error) {
        round_backoff_ = std::clamp<Millis>(round_backoff_ * 2, 250, s_.retry_max.count());
        next_round_at_ = now + round_backoff_;
        say("cannot read back the stream yet: " + *d.error + "; retrying");
        return;
    }
    round_backoff_ = 0;
    ++c_.rounds;
    d.result.asked_at = asked_at_;
    c_.round_messages += d.result.messages;
    const RoundOutcome out = ledger_.apply(d.result, highest_at_request_, now);
    for (const RecordId &r : d.copies)
        if (copies_seen_.size() < kCopiesRemembered && copies_seen_.insert({r.key, r.offset}).second)
            ++c_.copies;
    c_.found_stored += out.found_records;
    if (d.result.limits && d.result.first_seq > 1)
        for (Follower &f : followers_)
            f.set_stream_start(d.result.first_time_ns);
    if (first_round_ && d.result.messages != 0)
        say("read back " + std::to_string(d.result.messages) + " message(s) of this node past the cursor (" +
            std::to_string(d.took_ms) + " ms): not sent again");
    first_round_ = false;
    if (out.missing_ranges != 0)
        say("the stream lacks " + std::to_string(out.missing_bytes) + " bytes of records in " +
            std::to_string(out.missing_ranges) + " range(s) that it acknowledged, or held, or that failed: " +
            "sending them again");
    if (out.rolled_back) {
        ++c_.incidents;
        say("the stream's last sequence (" + std::to_string(d.result.last) + ") is below one it acknowledged (" +
            std::to_string(highest_at_request_) + "): it went backwards; looking for the recent records again");
    }
    if (!leader_.empty() && d.leader != leader_)
        incident(now, "the stream's leader changed from " + leader_ + " to " + d.leader);
    leader_ = d.leader;
    dirty_ = true;
}

void Shipper::maybe_round(Rounds &rounds, Millis now)
{
    if (!rounds.idle() || now < next_round_at_)
        return;
    const Ledger::RoundPlan plan = ledger_.round_plan(now);
    // Urgent when publishing waits for it; with --once, as soon as the
    // files are read and answered. A probe (nothing to look for) only every
    // reconcile_interval.
    // Records a round lacked are looked for again a second later, not at once.
    const bool soon = now - last_round_ >= std::min<Millis>(1000, s_.reconcile_interval.count());
    const bool due = (ledger_.round_urgent() && (!ledger_.suspects() || soon)) || (ledger_.suspects() && soon) ||
                     now - last_round_ >= s_.reconcile_interval.count() ||
                     (o_.once && plan.kind != Ledger::RoundKind::probe && ledger_.in_flight() == 0 &&
                      std::all_of(followers_.begin(), followers_.end(), [&](Follower &f) { return f.caught_up(now); }));
    if (!due)
        return;
    highest_at_request_ = ledger_.highest_seq();
    asked_at_ = now;
    rounds.request(plan.from, plan.until, highest_at_request_);
    last_round_ = now;
}

const char *Shipper::subject_of(std::size_t source, std::string_view type)
{
    auto &subjects = subjects_[source];
    for (const auto &[t, subject] : subjects)
        if (t == type)
            return subject.c_str();
    subjects.emplace_back(type, s_.subject_prefix + "." + s_.node + "." + std::string(type));
    return subjects.back().second.c_str();
}

// One line of the files: sent unless the stream is known to hold it.
bool Shipper::ship(std::size_t source, std::uint64_t key, std::uint64_t offset, std::string_view line)
{
    if (ledger_.in_flight() >= window_ || ledger_.round_urgent())
        return false;
    const std::uint64_t end = offset + line.size() + 1;
    switch (ledger_.consider(key, offset, end)) {
    case Ledger::Line::known:
        return true;
    case Ledger::Line::found_stored:
        ++c_.found_stored;
        return true;
    case Ledger::Line::resend:
        ++c_.restored;
        break;
    case Ledger::Line::send:
        break;
    }
    const ShipFile &spec = followers_[source].spec();
    id_.resize(s_.node.size() + 40);
    id_.resize(format_id(id_.data(), s_.node, RecordId{key, offset}));
    if (auto error = link_.publish(subject_of(source, record_type(line, spec.format, spec.only_type)), line,
                                   id_.c_str(), spec.format.c_str())) {
        ++c_.failed;
        publish_failed(now_ms(), *error);
        ledger_.sent(key, offset, end, ledger_.highest_seq());
        ledger_.failed(key, offset); // it may have left (the library's buffer): a round decides
        return false;
    }
    ledger_.sent(key, offset, end, ledger_.highest_seq());
    ++c_.published;
    if (first_publish_ == 0)
        first_publish_ = now_ms();
    return true;
}

bool Shipper::pump(Millis now)
{
    bool progressed = false;
    for (std::size_t i = 0; i < followers_.size(); ++i)
        progressed = followers_[i].pump(now, [&](std::uint64_t key, std::uint64_t offset, std::string_view line) {
            return ship(i, key, offset, line);
        }) || progressed;
    return progressed;
}

void Shipper::save(Millis now, bool force)
{
    if (!dirty_ || (!force && now - last_save_ < kSaveEvery))
        return;
    cursor_.scan_from = ledger_.scan_from();
    for (auto &[key, e] : cursor_.files) {
        e.final_offset = std::max(e.final_offset, ledger_.final_offset(key));
        std::erase_if(e.skipped, [&](const auto &range) { return range.second <= e.final_offset; });
    }
    if (auto e = save_cursor(cursor_, cursor_path_)) {
        if (now - last_save_ >= 60000 || force) { // said once a minute, not every 200 ms
            say("error: cannot write the cursor (records are shipped; the next start reads the stream back): " + *e);
            last_save_ = now;
        }
        return;
    }
    dirty_ = false;
    last_save_ = now;
}

// Keys whose files are gone need no memory. A key is forgotten only after
// its files were missing from kMissedPrunes listings in a row (a file being
// renamed or unreadable for a moment keeps its key).
void Shipper::prune()
{
    if (!std::all_of(followers_.begin(), followers_.end(), [](const Follower &f) { return f.listed_once(); }))
        return;
    std::set<std::uint64_t> listed;
    for (const Follower &f : followers_)
        listed.merge(f.listed_keys());
    for (const std::uint64_t key :
         age_entries(cursor_.files, listed, kMissedPrunes, [&](std::uint64_t k) { return ledger_.busy(k); }))
        ledger_.forget(key);
    // Keys a round found that no listing has (files of this node gone
    // before this process started).
    for (const std::uint64_t key : ledger_.keys())
        if (!cursor_.files.count(key) && !listed.count(key) && !ledger_.busy(key))
            ledger_.forget(key);
    if (!cursor_.legacy.empty()) {
        say("the old cursor's " + std::to_string(cursor_.legacy.size()) +
            " file(s) that are no longer on disk are forgotten");
        cursor_.legacy.clear();
    }
    dirty_ = true;
}

Lag Shipper::lag(Millis now)
{
    Lag l;
    l.records = ledger_.in_flight();
    l.bytes = ledger_.in_flight_bytes();
    for (Follower &f : followers_) {
        const auto u = f.unread();
        l.records += u.records;
        l.bytes += u.bytes;
    }
    l.unverified = ledger_.unverified_records();
    if (l.records == 0)
        behind_since_ = 0;
    else if (behind_since_ == 0)
        behind_since_ = now;
    l.seconds = behind_since_ ? static_cast<std::uint64_t>((now - behind_since_) / 1000) : 0;
    return l;
}

void Shipper::report(Millis now)
{
    c_.skipped_lines = 0;
    for (const Follower &f : followers_)
        c_.skipped_lines += f.counts().skipped_lines;
    report_status(StatusReport{s_, c_, lag(now), link_.open() && link_.connected()}, s_.state_dir + "/status.json");
    last_status_ = now;
}

bool Shipper::caught_up(Millis now)
{
    return ledger_.settled() &&
           std::all_of(followers_.begin(), followers_.end(), [&](Follower &f) { return f.caught_up(now); });
}

void Shipper::say_stopped()
{
    const double busy = static_cast<double>(last_ack_ - first_publish_) / 1000.0;
    char rate[96] = "";
    if (c_.shipped > 0 && busy > 0)
        std::snprintf(rate, sizeof rate, " in %.3f s from the first publish to the last ack (%.0f records/s)", busy,
                      static_cast<double>(c_.shipped) / busy);
    say("stopped: " + std::to_string(c_.shipped) + " records shipped" + rate + " (" + std::to_string(c_.duplicates) +
        " already in the stream, " + std::to_string(c_.restored) + " restored, " + std::to_string(ledger_.unverified_records()) +
        " not verified yet: the next start looks for them), cursor saved");
}

int Shipper::work()
{
    StateDir state;
    if (auto e = state.open(s_.state_dir)) {
        say("error: " + *e);
        return 1;
    }
    if (auto e = load_state()) {
        say("error: " + *e);
        return 1;
    }
    if (s_.node_defaulted)
        say("node is not set: using \"" + s_.node + "\" (the host name's first label); set node in the config if "
            "two hosts could share it");
    FollowerSettings fs;
    fs.rotated_idle = s_.rotated_idle.count();
    fs.retry_max = s_.retry_max.count();
    fs.max_line = s_.max_line;
    followers_.reserve(s_.files.size());
    for (const ShipFile &f : s_.files)
        followers_.emplace_back(f, fs, cursor_, ledger_, [](const std::string &line) { say(line); });
    subjects_.resize(followers_.size());

    int rc = 0;
    {
        Rounds rounds(link_, s_);
        last_status_ = now_ms();
        while (!stop_requested()) {
            const Millis now = now_ms();
            const auto phase = rounds.phase();
            if (phase == Rounds::Phase::failed) {
                rc = 1;
                break;
            }
            const bool ready = phase == Rounds::Phase::ready;
            if (ready) {
                take_acks(now);
                if (NatsLink::take_disconnect())
                    incident(now, "the connection to the servers was lost");
            }
            if (auto d = rounds.take())
                apply_round(*d, now);
            if (ready)
                maybe_round(rounds, now);
            dirty_ = ledger_.finalize(now) || dirty_;
            const bool publishing = ready && link_.connected() && !ledger_.round_urgent() && now >= publish_after_;
            const bool progressed = publishing && pump(now);
            if (!publishing)
                for (Follower &f : followers_)
                    f.refresh(now);
            save(now, false);
            if (take_status_request() || now - last_status_ >= s_.status_interval.count())
                report(now);
            if (now - last_prune_ >= kPruneEvery) {
                prune();
                last_prune_ = now;
            }
            if (o_.once && ready && caught_up(now))
                break;
            if (!progressed) {
                // With the window full, wait for an eighth of it to be
                // answered: a wake-up per answer would cost more than it.
                const bool full = ledger_.in_flight() >= window_;
                NatsLink::wait_for_acks(std::chrono::milliseconds(full ? 20 : 50),
                                        full ? std::max<std::size_t>(1, window_ / 8) : 1);
            }
        }
        // In flight: answered (or timed out) before the cursor is saved.
        if (rounds.phase() == Rounds::Phase::ready) {
            link_.complete(s_.ack_wait);
            take_acks(now_ms());
        }
        rounds.stop();
    }
    for (Follower &f : followers_) {
        if (f.broken())
            rc = 1;
        for (const std::string &name : f.given_up()) {
            say("error: not shipped: " + name);
            rc = 1;
        }
    }
    const Millis now = now_ms();
    dirty_ = true;
    save(now, true);
    report(now);
    say_stopped();
    link_.close();
    return rc;
}

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

} // namespace mtalog::ship
