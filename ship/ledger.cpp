#include "ledger.hpp"

#include <algorithm>
#include <iterator>
#include <limits>

namespace mtalog::ship {

namespace {

constexpr Millis kLongAgo = std::numeric_limits<Millis>::min() / 2;
constexpr Millis kBucketMs = 1000; // acknowledgements of one second share a segment

} // namespace

void Ledger::restore(std::uint64_t k, std::uint64_t final_offset)
{
    Key &e = key(k);
    e.final_offset = final_offset;
    e.read_pos = std::max(e.read_pos, final_offset);
}

std::uint64_t Ledger::read_pos(std::uint64_t k) const
{
    const auto it = keys_.find(k);
    return it == keys_.end() ? 0 : it->second.read_pos;
}

void Ledger::set_read_pos(std::uint64_t k, std::uint64_t pos)
{
    key(k).read_pos = pos;
}

std::uint64_t Ledger::final_offset(std::uint64_t k) const
{
    const auto it = keys_.find(k);
    return it == keys_.end() ? 0 : it->second.final_offset;
}

const Ledger::Segment *Ledger::segment_at(const Key &k, std::uint64_t offset)
{
    auto it = k.segments.upper_bound(offset);
    if (it == k.segments.begin())
        return nullptr;
    --it;
    return offset < it->second.end ? &it->second : nullptr;
}

Ledger::Line Ledger::consider(std::uint64_t k, std::uint64_t offset, std::uint64_t end)
{
    Key &e = key(k);
    const bool again = offset < e.high_water;
    e.high_water = std::max(e.high_water, end);
    if (offset < e.final_offset || e.pending.count(offset) != 0)
        return Line::known;
    if (const Segment *s = segment_at(e, offset); s && end <= s->end)
        return s->found && !again ? Line::found_stored : Line::known;
    if (again && e.lost.covers(offset, end)) {
        e.lost.remove(offset, end);
        return Line::resend;
    }
    return Line::send;
}

bool Ledger::known_at(std::uint64_t k, std::uint64_t offset) const
{
    const auto it = keys_.find(k);
    return it != keys_.end() && (offset < it->second.final_offset || segment_at(it->second, offset));
}

void Ledger::skip(std::uint64_t k, std::uint64_t offset, std::uint64_t end)
{
    Segment s;
    s.end = end;
    s.acked_at = kLongAgo;
    s.verified = s.checked_late = true;
    s.skipped = true;
    add_segment(key(k), offset, s);
}

void Ledger::add_segment(Key &k, std::uint64_t start, const Segment &s)
{
    if (start < k.final_offset || segment_at(k, start))
        return; // known already (an answer after a round found the record)
    Segment seg = s;
    auto next = k.segments.upper_bound(start);
    if (next != k.segments.end())
        seg.end = std::min(seg.end, next->first);
    const auto mergeable = [](const Segment &a, const Segment &b) {
        return a.verified == b.verified && a.checked_late == b.checked_late && a.found == b.found &&
               a.skipped == b.skipped && a.strikes == b.strikes &&
               a.acked_at / kBucketMs == b.acked_at / kBucketMs;
    };
    const auto absorb = [](Segment &into, const Segment &from) {
        into.min_seq = std::min(into.min_seq, from.min_seq);
        into.max_seq = std::max(into.max_seq, from.max_seq);
        into.acked_at = std::max(into.acked_at, from.acked_at);
        into.records += from.records;
    };
    if (next != k.segments.begin()) {
        auto prev = std::prev(next);
        if (prev->second.end == start && mergeable(prev->second, seg)) {
            const std::uint64_t end = seg.end;
            absorb(prev->second, seg);
            prev->second.end = end;
            if (next != k.segments.end() && next->first == end && mergeable(prev->second, next->second)) {
                absorb(prev->second, next->second);
                prev->second.end = next->second.end;
                k.segments.erase(next);
            }
            return;
        }
    }
    if (next != k.segments.end() && next->first == seg.end && mergeable(seg, next->second)) {
        absorb(seg, next->second);
        seg.end = next->second.end;
        k.segments.erase(next);
    }
    k.segments.emplace(start, seg);
}

void Ledger::sent(std::uint64_t k, std::uint64_t offset, std::uint64_t end, std::uint64_t floor)
{
    if (key(k).pending.emplace(offset, Pending{end, floor, false}).second)
        ++in_flight_;
}

std::uint64_t Ledger::acked(std::uint64_t k, std::uint64_t offset, std::uint64_t seq, Millis now)
{
    const auto kit = keys_.find(k);
    if (kit == keys_.end())
        return 0;
    Key &e = kit->second;
    const auto it = e.pending.find(offset);
    if (it == e.pending.end())
        return 0;
    Segment s;
    s.end = it->second.end;
    s.min_seq = s.max_seq = seq;
    s.acked_at = now;
    s.records = 1;
    if (!e.resent_from.empty()) {
        auto r = e.resent_from.upper_bound(offset);
        if (r != e.resent_from.begin() && offset < std::prev(r)->second.first)
            s.min_seq = std::min(s.min_seq, std::prev(r)->second.second);
    }
    failed_ -= it->second.failed ? 1 : 0;
    --in_flight_;
    e.pending.erase(it);
    highest_seq_ = std::max(highest_seq_, seq);
    add_segment(e, offset, s);
    return s.end - offset;
}

std::uint64_t Ledger::in_flight_bytes() const
{
    std::uint64_t n = 0;
    for (const auto &[k, e] : keys_)
        for (const auto &[offset, p] : e.pending)
            n += p.end - offset;
    return n;
}

void Ledger::failed(std::uint64_t k, std::uint64_t offset)
{
    const auto kit = keys_.find(k);
    if (kit == keys_.end())
        return;
    const auto it = kit->second.pending.find(offset);
    if (it != kit->second.pending.end() && !it->second.failed) {
        it->second.failed = true;
        ++failed_;
    }
}

void Ledger::fail_in_flight()
{
    for (auto &[k, e] : keys_)
        for (auto &[offset, p] : e.pending)
            if (!p.failed) {
                p.failed = true;
                ++failed_;
            }
}

void Ledger::incident(Millis now)
{
    for (auto &[k, e] : keys_)
        for (auto &[start, s] : e.segments)
            if (!s.skipped && s.acked_at >= now - window_)
                s.verified = s.checked_late = false;
}

bool Ledger::suspects() const
{
    for (const auto &[k, e] : keys_) {
        for (const auto &[start, s] : e.segments)
            if (s.strikes != 0)
                return true;
        for (const auto &[offset, p] : e.pending)
            if (p.strikes != 0)
                return true;
    }
    return false;
}

std::size_t Ledger::unverified_segments() const
{
    std::size_t n = 0;
    for (const auto &[k, e] : keys_)
        for (const auto &[start, s] : e.segments)
            n += s.verified ? 0 : 1;
    return n + failed_;
}

std::uint64_t Ledger::unverified_records() const
{
    std::uint64_t n = 0;
    for (const auto &[k, e] : keys_)
        for (const auto &[start, s] : e.segments)
            n += s.verified ? 0 : s.records;
    return n + failed_;
}

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
        if (s.max_seq < aged_seq || (found && found->covers(start, s.end)) ||
            (s.end <= aged_before && s.min_seq < aged_seq)) {
            // Found, or aged out of a stream with limits (not lost).
            s.checked_late = s.checked_late || due || s.max_seq < aged_seq || s.end <= aged_before;
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
            if (a < aged_before && whole.min_seq < aged_seq)
                put(a, std::min(b, aged_before), true, true, 0); // aged out
            a = std::max(a, whole.min_seq < aged_seq ? aged_before : a);
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
    const bool from_start = restart_round_ && scan_from_ == 0 && r.limits && r.first_seq > 1 &&
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

bool Ledger::finalize(Millis now)
{
    bool moved = false;
    for (auto &[k, e] : keys_) {
        while (!e.segments.empty()) {
            const auto first = e.segments.begin();
            const Segment &s = first->second;
            if (first->first != e.final_offset || !s.checked_late || s.acked_at > now - window_)
                break;
            e.final_offset = s.end;
            e.segments.erase(first);
            moved = true;
        }
        e.lost.trim_before(e.final_offset);
        while (!e.resent_from.empty() && e.resent_from.begin()->second.first <= e.final_offset)
            e.resent_from.erase(e.resent_from.begin());
        e.read_pos = std::max(e.read_pos, e.final_offset);
    }
    return moved;
}

std::uint64_t Ledger::scan_from() const
{
    std::uint64_t s = restart_round_ ? scan_from_ : UINT64_MAX;
    for (const auto &[k, e] : keys_) {
        for (const auto &[start, seg] : e.segments)
            if (!seg.skipped)
                s = std::min(s, seg.min_seq == 0 ? 0 : seg.min_seq - 1);
        for (const auto &[offset, p] : e.pending)
            s = std::min(s, p.floor);
    }
    return s == UINT64_MAX ? highest_seq_ : s;
}

void Ledger::set_scan_from(std::uint64_t seq)
{
    scan_from_ = seq;
    restart_round_ = true;
}

bool Ledger::busy(std::uint64_t k) const
{
    const auto it = keys_.find(k);
    return it != keys_.end() && !it->second.pending.empty();
}

bool Ledger::knows(std::uint64_t k) const
{
    const auto it = keys_.find(k);
    return it != keys_.end() && (it->second.final_offset != 0 || it->second.high_water != 0 ||
                                 !it->second.segments.empty() || !it->second.pending.empty());
}

void Ledger::forget(std::uint64_t k)
{
    const auto it = keys_.find(k);
    if (it == keys_.end())
        return;
    for (const auto &[offset, p] : it->second.pending) {
        --in_flight_;
        failed_ -= p.failed ? 1 : 0;
    }
    keys_.erase(it);
}

std::vector<std::uint64_t> Ledger::keys() const
{
    std::vector<std::uint64_t> out;
    out.reserve(keys_.size());
    for (const auto &[k, e] : keys_)
        out.push_back(k);
    return out;
}

} // namespace mtalog::ship
