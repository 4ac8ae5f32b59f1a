#include "shipper_loop.hpp"

#include <algorithm>

namespace mtalog::ship {

namespace {

constexpr std::size_t kCopiesRemembered = 100000; // ids of copies counted (each once), about 6 MB at most

} // namespace

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
            ledger_.failed(a.record.key, a.record.offset);
            if (!failed)
                error = a.error;
            failed = true;
            continue;
        }
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
    if (first_round_ && cursor_lost_ && d.result.limits && d.result.first_seq > 1)
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
                                   RecordId{key, offset}, id_.c_str(), spec.format.c_str())) {
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

} // namespace mtalog::ship
