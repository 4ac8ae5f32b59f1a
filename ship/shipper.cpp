#include "shipper_loop.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>

#include "signals.hpp"
#include "state_dir.hpp"

namespace mtalog::ship {

Millis now_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

namespace {

constexpr Millis kSaveEvery = 200;
constexpr Millis kPruneEvery = 60000;
constexpr unsigned kMissedPrunes = 10; // a key whose files are gone this long is forgotten

} // namespace

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
        cursor_lost_ = true;
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
    // With no cursor at all (lost, or a new node), what a stream with limits
    // let go is taken as aged out, not lost (see set_scan_from); an audit
    // looks for everything.
    cursor_lost_ = cursor_lost_ || (cursor_.files.empty() && cursor_.legacy.empty() && cursor_.scan_from == 0);
    if (o_.audit)
        cursor_lost_ = false;
    ledger_.set_scan_from(cursor_.scan_from, cursor_lost_); // the first round reads back from there
    if (auto e = save_cursor(cursor_, cursor_path_))
        return "cannot write the cursor: " + *e;
    return std::nullopt;
}

void Shipper::save(Millis now, bool force)
{
    if (!dirty_ || (!force && now - last_save_ < kSaveEvery))
        return;
    cursor_.scan_from = ledger_.scan_from();
    for (auto &[key, e] : cursor_.files) {
        e.final_offset = std::max(e.final_offset, ledger_.final_offset(key));
        const std::uint64_t final_offset = e.final_offset; // (clang: no lambda captures a structured binding)
        std::erase_if(e.skipped, [final_offset](const auto &range) { return range.second <= final_offset; });
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
    // A log whose directory could not be listed says nothing about which of
    // its files are gone.
    if (!std::all_of(followers_.begin(), followers_.end(),
                     [](const Follower &f) { return f.listed_once() && f.listing_complete(); }))
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
    l.unfinal_bytes = ledger_.unfinal_bytes();
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
    report_status(StatusReport{s_, c_, lag(now), connected_}, s_.state_dir + "/status.json");
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
                link_.expire();
                take_acks(now);
                if (NatsLink::take_disconnect())
                    incident(now, "the connection to the servers was lost");
            }
            if (auto d = rounds.take())
                apply_round(*d, now);
            if (ready)
                maybe_round(rounds, now);
            dirty_ = ledger_.finalize(now) || dirty_;
            // The link is the rounds thread's until it is ready.
            connected_ = ready && link_.connected();
            const bool publishing = connected_ && !ledger_.round_urgent() && now >= publish_after_;
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
            if (!progressed || ledger_.in_flight() >= window_) {
                // With the window full, wait for an eighth of it to be
                // answered: a wake-up per answer would cost more than it.
                const bool full = ledger_.in_flight() >= window_;
                NatsLink::wait_for_acks(std::chrono::milliseconds(full ? 20 : 50),
                                        full ? std::max<std::size_t>(1, window_ / 8) : 1);
            }
        }
        // In flight: answered (or given up on) before the cursor is saved.
        if (rounds.phase() == Rounds::Phase::ready) {
            link_.complete(s_.ack_wait);
            take_acks(now_ms());
        }
        rounds.stop();
    }
    for (const Follower &f : followers_) {
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

int run_shipper(const Settings &settings, const RunOptions &options)
{
    install_signals(Hangup::status);
    int rc = 0;
    {
        Shipper shipper(settings, options);
        rc = shipper.work();
    }
    nats_CloseAndWait(5000); // no libnats thread outlives the objects it calls back
    return rc;
}

} // namespace mtalog::ship
