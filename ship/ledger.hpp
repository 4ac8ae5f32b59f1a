// The shipper's bookkeeping of which records are where, per file key, as
// pure data (no I/O, time passed in), so its arithmetic is tested alone.
//
// A record [offset, end) of a file goes through:
//   unknown -> in flight (published) -> acknowledged -> verified -> final
// and back to unknown when a read of the stream does not find it:
// - in flight: published, no answer yet. An error answer makes it failed:
//   it may be stored (the answer was lost), so it is neither sent again nor
//   taken as stored until a read of the stream (a round) decides.
// - acknowledged: the stream answered with a sequence. nats-server 2.9.10
//   can still lose it (a leader elected with a stale store, a rollback after
//   an election) or hide it for minutes.
// - verified: a round read this node's messages from the stream, once its
//   online replicas were current, and found the record. When two rounds in
//   a row lack a record they looked for, it goes back to the files: the
//   follower reads it again and it is sent again.
// - final: verified, and found once more by a round that began at least
//   `window` after its acknowledgement (the late check). An incident (a
//   failed publish, a lost connection, a new stream leader, a stream that
//   went backwards) makes every record acknowledged within the window
//   unverified again. Only the final prefix of a file is written to the
//   cursor: after a restart the first round reads back everything past it.
// So in steady state every record's header is read back twice (once soon
// after its answer, once `window` later, in slices of the stream), plus the
// window once more after each incident.
#pragma once

#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "range_set.hpp"

namespace mtalog::ship {

using Millis = std::int64_t; // a steady clock, in milliseconds

// What a round read from the stream: per file key, the records of this node
// it holds at sequences [from, last].
struct RoundResult {
    std::uint64_t from = 1;      // first sequence read
    std::uint64_t until = UINT64_MAX; // last sequence read, when less than the stream's end (a late check)
    std::uint64_t last = 0;      // the stream's last sequence when the read began
    Millis asked_at = 0;         // when the round was asked for
    std::uint64_t first_seq = 0;    // the stream's first sequence then
    std::int64_t first_time_ns = 0; // and its time
    bool limits = false;            // the stream lets old messages go (before first_seq: aged out, not lost)
    std::unordered_map<std::uint64_t, RangeSet> found;
    // Per key, the lowest and highest sequence its found records were at.
    std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> seqs;
    std::uint64_t messages = 0; // of this node, read
};

struct RoundOutcome {
    std::uint64_t verified_records = 0; // acknowledged records the read found
    std::uint64_t found_records = 0;    // failed publishes the read found stored
    std::uint64_t missing_bytes = 0;    // acknowledged or found before, not found now: to send again
    std::uint64_t missing_ranges = 0;
    std::uint64_t unsettled_bytes = 0;  // failed publishes the read did not find: to send again
    std::uint64_t suspect_bytes = 0;    // not found by this round: looked for once more before they are sent again
    bool rolled_back = false; // the stream's last sequence was below one it acknowledged: an incident
};

class Ledger {
public:
    explicit Ledger(Millis window) : window_(window) {}

    // --- the files' side -------------------------------------------------
    // A key the cursor knew: everything before `final_offset` is final.
    void restore(std::uint64_t key, std::uint64_t final_offset);
    // Where the follower reads key's file from next (the final offset at
    // first, then after the last line it took; moved back when a round finds
    // records missing).
    [[nodiscard]] std::uint64_t read_pos(std::uint64_t key) const;
    void set_read_pos(std::uint64_t key, std::uint64_t pos);
    [[nodiscard]] std::uint64_t final_offset(std::uint64_t key) const;

    enum class Line {
        send,         // nobody knows it is in the stream
        resend,       // acknowledged (or found) before, and a round found it missing since
        known,        // final, acknowledged, verified or in flight
        found_stored, // first seen here, and a read of the stream already found it
    };
    // Decides on the line [offset, end) the follower read.
    [[nodiscard]] Line consider(std::uint64_t key, std::uint64_t offset, std::uint64_t end);
    // A line that will never be sent (over-long): final at once.
    void skip(std::uint64_t key, std::uint64_t offset, std::uint64_t end);
    // Whether `offset` lies in what is final or known (an over-long line
    // skipped before, say).
    [[nodiscard]] bool known_at(std::uint64_t key, std::uint64_t offset) const;

    // --- publishing --------------------------------------------------------
    // `floor`: the highest stream sequence known before publishing (the
    // message, once stored, is above it unless the stream goes backwards).
    void sent(std::uint64_t key, std::uint64_t offset, std::uint64_t end, std::uint64_t floor);
    // An answer with a sequence; the record's length with its newline, or 0
    // when it was not in flight (an answer after a round settled it).
    std::uint64_t acked(std::uint64_t key, std::uint64_t offset, std::uint64_t seq, Millis now);
    // An error answer: the record may or may not be stored.
    void failed(std::uint64_t key, std::uint64_t offset);

    // --- rounds ------------------------------------------------------------
    // Records acknowledged within the window must be found again.
    void incident(Millis now);
    // What a round has to look for: records not verified yet (read from the
    // first of them to the stream's end), or records due for their late
    // check (read from the first to the last of them).
    // With nothing to look for, a round only asks the stream's state (a
    // probe): a stream that went backwards, or a new leader, is an incident.
    enum class RoundKind { probe, check, late };
    struct RoundPlan {
        RoundKind kind = RoundKind::probe;
        std::uint64_t from = 1, until = UINT64_MAX;
    };
    [[nodiscard]] RoundPlan round_plan(Millis now) const;
    [[nodiscard]] bool round_urgent() const { return failed_ != 0 || restart_round_; } // blocks publishing
    // Records one round lacked: the next round comes soon.
    [[nodiscard]] bool suspects() const;
    // Applies what a round read. `highest_acked` is the highest sequence
    // acknowledged before the round began: a stream that now ends below it
    // went backwards.
    RoundOutcome apply(const RoundResult &r, std::uint64_t highest_acked, Millis now);
    // Moves the final offsets; true when one moved.
    bool finalize(Millis now);

    // --- state -------------------------------------------------------------
    // The sequence a restart reads back from: nothing of this node after it
    // is known final.
    [[nodiscard]] std::uint64_t scan_from() const;
    // From the cursor; a restart round follows. With `no_cursor` (lost, or a
    // new node) and a stream with limits that let messages go, a file's
    // records before the first one that round finds aged out (they were
    // shipped before it), rather than being lost.
    void set_scan_from(std::uint64_t seq, bool no_cursor = false);
    [[nodiscard]] std::size_t in_flight() const { return in_flight_; }
    [[nodiscard]] std::uint64_t in_flight_bytes() const;
    [[nodiscard]] std::size_t failed_count() const { return failed_; }
    // Acknowledged records no round has found yet (records of a segment split
    // by a round are not counted again).
    [[nodiscard]] std::uint64_t unverified_records() const;
    [[nodiscard]] std::size_t unverified_segments() const;
    // Bytes of records answered or in flight that are not final yet: what
    // the shipper still guards (0 once everything is final).
    [[nodiscard]] std::uint64_t unfinal_bytes() const;
    [[nodiscard]] std::uint64_t highest_seq() const { return highest_seq_; }
    // Records of `key` in flight or failed (a finished file waits for them).
    [[nodiscard]] bool busy(std::uint64_t key) const;
    // Whether anything is known of `key` (final, in flight, answered, found).
    [[nodiscard]] bool knows(std::uint64_t key) const;
    // Whether everything acknowledged or found is verified (--once waits for it).
    [[nodiscard]] bool settled() const { return in_flight_ == 0 && unverified_segments() == 0 && !restart_round_; }
    void forget(std::uint64_t key); // a key whose files are gone for good
    [[nodiscard]] std::vector<std::uint64_t> keys() const;

private:
    struct Segment {
        std::uint64_t end = 0;
        std::uint64_t min_seq = 0, max_seq = 0;
        Millis acked_at = 0; // of its newest record
        std::uint32_t records = 0;
        bool verified = false;
        bool checked_late = false; // found by a round that began `window` after the answer
        bool found = false;   // found by a read, not acknowledged to this process
        bool skipped = false; // lines never sent (over-long): no sequence
        bool resent = false;  // sent again: min_seq is where a first copy could be
        std::uint8_t strikes = 0; // rounds in a row that lacked it (two: lost)
    };
    struct Pending {
        std::uint64_t end = 0;
        std::uint64_t floor = 0;
        bool failed = false;
        std::uint8_t strikes = 0; // rounds in a row that did not find it stored (two: sent again)
    };
    struct Key {
        std::uint64_t final_offset = 0;
        std::uint64_t read_pos = 0;
        std::uint64_t high_water = 0; // end of the furthest line considered
        std::map<std::uint64_t, Segment> segments; // past final_offset, disjoint
        std::map<std::uint64_t, Pending> pending;  // in flight or failed
        RangeSet lost; // acknowledged or found once, missing since, not sent again yet
        // Records sent again after rounds lacked them: [start, end) -> the
        // lowest sequence their first copy could be at. Their new segment's
        // checks read from there, so a first copy that shows again later is
        // seen (and counted as a copy).
        std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> resent_from;
    };

    Key &key(std::uint64_t k) { return keys_[k]; }
    void add_segment(Key &k, std::uint64_t start, const Segment &s);
    [[nodiscard]] static const Segment *segment_at(const Key &k, std::uint64_t offset);
    void settle_segments(Key &k, const RangeSet *found, const RoundResult &r, RoundOutcome &out);
    void settle_pending(Key &k, const RangeSet *found, std::pair<std::uint64_t, std::uint64_t> seqs,
                        const RoundResult &r, RoundOutcome &out, Millis now);
    void add_found(Key &k, const RangeSet &found, std::pair<std::uint64_t, std::uint64_t> seqs, Millis now);
    static void missing(Key &k, std::uint64_t start, std::uint64_t end, std::uint64_t first_seq_from,
                        RoundOutcome &out, bool was_stored);

    Millis window_;
    std::unordered_map<std::uint64_t, Key> keys_;
    std::size_t in_flight_ = 0; // pending, failed included
    std::size_t failed_ = 0;
    std::uint64_t highest_seq_ = 0; // highest sequence acknowledged or read
    std::uint64_t scan_from_ = 0;   // from the cursor, until the restart round
    bool restart_round_ = false;
    bool no_cursor_ = false;
};

} // namespace mtalog::ship
