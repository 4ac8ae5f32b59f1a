// The ledger's side of a round: what it looks for (round_plan) and what a
// read of the stream settles (apply). See ledger.hpp.
#include "ledger.hpp"

#include <algorithm>
#include <iterator>

namespace mtalog::ship {

Ledger::RoundPlan Ledger::round_plan(Millis now) const
{
    RoundPlan check{RoundKind::check, restart_round_ ? scan_from_ + 1 : UINT64_MAX, UINT64_MAX};
    RoundPlan late{RoundKind::late, UINT64_MAX, 0};
    for (const auto &[k, e] : keys_) {
        for (const auto &[offset, p] : e.pending)
            if (p.failed)
                check.from = std::min(check.from, p.floor + 1);
        for (const auto &[start, s] : e.segments) {
            if (!s.verified) {
                check.from = std::min(check.from, s.min_seq);
            } else if (!s.checked_late && s.acked_at <= now - window_) {
                late.from = std::min(late.from, s.min_seq);
                late.until = std::max(late.until, s.max_seq);
            }
        }
    }
    if (check.from != UINT64_MAX) {
        check.from = std::max<std::uint64_t>(check.from, 1);
        return check;
    }
    if (late.from != UINT64_MAX) {
        late.from = std::max<std::uint64_t>(late.from, 1);
        return late;
    }
    return RoundPlan{RoundKind::probe, highest_seq_ + 1, UINT64_MAX};
}

void Ledger::missing(Key &k, std::uint64_t start, std::uint64_t end, std::uint64_t first_seq_from,
                     RoundOutcome &out, bool was_stored)
{
    k.resent_from[start] = {end, first_seq_from};
    if (was_stored) {
        out.missing_bytes += end - start;
        ++out.missing_ranges;
        k.lost.add(start, end);
    } else {
        out.unsettled_bytes += end - start;
    }
    k.read_pos = std::min(k.read_pos, start);
}

void Ledger::settle_segments(Key &k, const RangeSet *found, const RoundResult &r, RoundOutcome &out)
{
    const std::uint64_t last = std::min(r.last, r.until);
    // A stream with limits lets its oldest messages go: a file's records
    // before the first one it still holds aged out, they were not lost.
    const std::uint64_t aged_before =
        r.limits && r.first_seq > 1 && found && !found->empty() ? found->ranges().begin()->first : 0;
    const std::uint64_t aged_seq = r.limits ? r.first_seq : 0; // answered below it: aged out
    for (auto it = k.segments.begin(); it != k.segments.end();) {
        Segment &s = it->second;
        const std::uint64_t start = it->first;
        // Looked for: what is not verified, and what is due for its late check.
        const bool due = s.verified && !s.checked_late && s.acked_at <= r.asked_at - window_;
        if ((s.verified && !due) || s.min_seq < r.from) {
            ++it;
            continue;
        }
        const std::uint64_t seg_aged_seq = s.resent ? 0 : aged_seq; // a copy sent again is not aged
        if (s.max_seq < seg_aged_seq || (found && found->covers(start, s.end)) ||
            (s.end <= aged_before && s.min_seq < seg_aged_seq)) {
            // Found, or aged out of a stream with limits (not lost).
            s.checked_late = s.checked_late || due || s.max_seq < seg_aged_seq || s.end <= aged_before;
            s.verified = true;
            out.verified_records += s.records;
            ++it;
            continue;
        }
        // Past what the read covered: answered after the round was asked for,
        // it may be stored after the read began (the next round looks). Answered
        // before, it was stored before: the stream has gone backwards since.
        if (s.max_seq > last && s.acked_at >= r.asked_at && !out.rolled_back) {
            ++it;
            continue;
        }
        // Some or all of it is missing: the found parts stay, verified.
        const Segment whole = s;
        it = k.segments.erase(it);
        const auto put = [&](std::uint64_t a, std::uint64_t b, bool verified, bool checked_late, std::uint8_t strikes) {
            Segment part = whole;
            part.end = b;
            part.verified = verified;
            part.checked_late = checked_late;
            part.strikes = strikes;
            part.records = 0;
            it = std::next(k.segments.emplace(a, part).first);
        };
        // A read can miss what the next one finds (a leader that has not
        // applied everything yet): a record is taken for lost only when two
        // rounds in a row lack it.
        const auto lacking = [&](std::uint64_t a, std::uint64_t b) {
            const bool old_part = !whole.resent && whole.min_seq < aged_seq;
            if (a < aged_before && old_part)
                put(a, std::min(b, aged_before), true, true, 0); // aged out
            a = std::max(a, old_part ? aged_before : a);
            if (a >= b)
                return;
            if (whole.strikes == 0) {
                put(a, b, false, false, 1);
                out.suspect_bytes += b - a;
            } else {
                missing(k, a, b, whole.min_seq, out, true);
            }
        };
        std::uint64_t pos = start;
        if (found)
            for (const auto &[a, b] : found->ranges()) {
                if (b <= pos)
                    continue;
                if (a >= whole.end)
                    break;
                const std::uint64_t from = std::max(a, pos), to = std::min(b, whole.end);
                if (from > pos)
                    lacking(pos, from);
                put(from, to, true, due, 0);
                pos = to;
            }
        if (pos < whole.end)
            lacking(pos, whole.end);
    }
}

void Ledger::settle_pending(Key &k, const RangeSet *found, std::pair<std::uint64_t, std::uint64_t> seqs,
                            const RoundResult &r, RoundOutcome &out, Millis now)
{
    for (auto it = k.pending.begin(); it != k.pending.end();) {
        const std::uint64_t offset = it->first;
        const Pending p = it->second;
        if (!p.failed || p.floor + 1 < r.from || r.until != UINT64_MAX) {
            ++it; // its sequence is unknown: only a read to the stream's end settles it
            continue;
        }
        const bool stored = found && found->covers(offset, p.end);
        if (!stored && p.strikes == 0) {
            it->second.strikes = 1; // looked for once more before it is sent again
            out.suspect_bytes += p.end - offset;
            ++it;
            continue;
        }
        it = k.pending.erase(it);
        --failed_;
        --in_flight_;
        if (stored) {
            Segment s;
            s.end = p.end;
            s.min_seq = seqs.first;
            s.max_seq = seqs.second;
            s.acked_at = now;
            s.records = 1;
            s.verified = s.found = true;
            add_segment(k, offset, s);
            ++out.found_records;
        } else {
            missing(k, offset, p.end, p.floor + 1, out, false);
        }
    }
}

void Ledger::add_found(Key &k, const RangeSet &found, std::pair<std::uint64_t, std::uint64_t> seqs, Millis now)
{
    for (const auto &[a, b] : found.ranges()) {
        std::uint64_t pos = std::max(a, k.final_offset);
        while (pos < b) {
            // The stretch from pos that no segment holds yet.
            auto next = k.segments.upper_bound(pos);
            if (next != k.segments.begin()) {
                const auto prev = std::prev(next);
                if (pos < prev->second.end) {
                    pos = prev->second.end;
                    continue;
                }
            }
            const std::uint64_t to = next == k.segments.end() ? b : std::min(b, next->first);
            if (pos < to) {
                Segment s;
                s.end = to;
                s.min_seq = seqs.first;
                s.max_seq = seqs.second;
                s.acked_at = now;
                s.verified = s.found = true;
                add_segment(k, pos, s);
            }
            pos = to;
        }
    }
}

RoundOutcome Ledger::apply(const RoundResult &r, std::uint64_t highest_acked, Millis now)
{
    RoundOutcome out;
    out.rolled_back = r.until == UINT64_MAX && r.last < highest_acked;
    if (out.rolled_back)
        incident(now); // what it verified in the window may be gone too: looked for again
    // After a lost cursor (or for an audit) the first round reads from the
    // stream's start: when the stream lets old messages go (limits) and has,
    // a file's records before the first one it holds aged out, as they were
    // shipped before it.
    const bool from_start = restart_round_ && no_cursor_ && scan_from_ == 0 && r.limits && r.first_seq > 1 &&
                            r.from <= r.first_seq && r.until == UINT64_MAX;
    for (const auto &[k, found] : r.found) {
        Key &e = key(k); // maybe a file this process has not listed yet (shipped before a restart)
        if (from_start && !found.empty() && found.ranges().begin()->first > e.final_offset && e.segments.empty() &&
            e.pending.empty())
            skip(k, e.final_offset, found.ranges().begin()->first);
    }
    for (auto &[k, e] : keys_) {
        const auto f = r.found.find(k);
        const RangeSet *found = f == r.found.end() ? nullptr : &f->second;
        const auto s = r.seqs.find(k);
        const auto seqs = s == r.seqs.end() ? std::pair{r.from, r.last} : s->second;
        settle_segments(e, found, r, out);
        settle_pending(e, found, seqs, r, out, now);
        if (found)
            add_found(e, *found, seqs, now);
    }
    if (restart_round_ && r.from <= scan_from_ + 1 && r.until == UINT64_MAX)
        restart_round_ = false;
    highest_seq_ = out.rolled_back ? r.last : std::max(highest_seq_, r.last);
    return out;
}

} // namespace mtalog::ship
