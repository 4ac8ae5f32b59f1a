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
               a.skipped == b.skipped && a.strikes == b.strikes && a.resent == b.resent &&
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
        if (r != e.resent_from.begin() && offset < std::prev(r)->second.first) {
            s.min_seq = std::min(s.min_seq, std::prev(r)->second.second);
            s.resent = true;
        }
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

std::uint64_t Ledger::unfinal_bytes() const
{
    std::uint64_t n = in_flight_bytes();
    for (const auto &[k, e] : keys_)
        for (const auto &[start, s] : e.segments)
            n += s.end - start;
    return n;
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

void Ledger::set_scan_from(std::uint64_t seq, bool no_cursor)
{
    scan_from_ = seq;
    restart_round_ = true;
    no_cursor_ = no_cursor;
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
