// Follows the files of one configured log: lists them (the live file and its
// rotated siblings), works on the oldest one that has records to ship, and
// hands out its lines with their offsets.
//
// A file has work when the ledger's read position is before its end, when a
// rotated file is not finished yet, when a finished one grew (a writer still
// had it open) or a compressed copy of it holds more than was read, and when
// a round found records of it missing. A rotated file is finished once it is
// read to its end and the live path has held another file for rotated_idle
// (counted from when the follower first saw that). The live file is never
// finished. A file that cannot be opened is tried again after retry_max; the
// others go on meanwhile.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cursor.hpp"
#include "ledger.hpp"
#include "ship_config.hpp"
#include "spool.hpp"

namespace mtalog::ship {

struct FollowerSettings {
    Millis rotated_idle = 2000;
    Millis retry_max = 10000;
    std::size_t max_line = 1 << 20; // longer lines are reported, counted and skipped
};

struct FollowerCounts {
    std::uint64_t skipped_lines = 0; // over max_line
};

class Follower {
public:
    // take(key, offset, line): false to stop for now (the window is full).
    using Take = std::function<bool(std::uint64_t, std::uint64_t, std::string_view)>;
    using Say = std::function<void(const std::string &)>;

    Follower(const ShipFile &spec, const FollowerSettings &settings, Cursor &cursor, Ledger &ledger, Say say);
    ~Follower();
    Follower(Follower &&) noexcept;

    // Lists when due, moves to the file that needs work, and hands out lines
    // until `take` says stop or nothing is left for now. True when it read.
    bool pump(Millis now, const Take &take);
    // Lists when due, without reading (while nothing can be published), so
    // that the lag counts what the files hold.
    void refresh(Millis now);
    // Nothing is left that can be shipped now (a live file's partial last
    // line that has not changed for rotated_idle does not count; files
    // given up on do not count).
    [[nodiscard]] bool caught_up(Millis now);
    // Files that could not be opened even when tried again, and copies of
    // other files that are not shipped: each an error at the end.
    [[nodiscard]] std::vector<std::string> given_up() const;
    // Shipping of this log stopped (the file shrank under it).
    [[nodiscard]] bool broken() const { return broken_; }
    [[nodiscard]] const ShipFile &spec() const { return spec_; }
    // Keys of the files in the last listing.
    [[nodiscard]] std::set<std::uint64_t> listed_keys() const;
    [[nodiscard]] bool listed_once() const { return listed_once_; }
    [[nodiscard]] const FollowerCounts &counts() const { return counts_; }

    struct Lag {
        std::uint64_t records = 0, bytes = 0;
    };
    // What the files hold that is not read yet (plain files counted line by
    // line, compressed files not started estimated from the average record).
    [[nodiscard]] Lag unread();

    // After a lost cursor: the stream lets messages go (it has limits) and
    // its oldest message is from `first_time_ns`. A file this shipper knows
    // nothing of that was last written before then would only have been in
    // the stream before that message, so it aged out; it is not shipped
    // again. Applied once, at the next listing (before anything is read).
    void set_stream_start(std::int64_t first_time_ns)
    {
        stream_start_ns_ = first_time_ns;
        next_list_ = 0;
    }
    // The last listing could open the log's directory (a directory that
    // cannot be read says nothing about which files are gone).
    [[nodiscard]] bool listing_complete() const { return listing_complete_; }

private:
    struct Failure {
        Millis retry_at = 0;
        int tries = 0;
        std::string error;
    };
    using Identity = std::pair<dev_t, ino_t>;

    void list(Millis now);
    // Where the live file was read to, when it now ends before that (its
    // size then in `size`).
    [[nodiscard]] std::optional<std::uint64_t> live_file_shrunk(std::uint64_t &size) const;
    // Reports a file that shrank under the shipper and stops this log.
    void stop_shrunk(const std::string &name, std::uint64_t from, std::uint64_t to);
    void migrate_legacy();
    [[nodiscard]] bool has_work(const Candidate &c);
    [[nodiscard]] bool is_active(const Candidate &c) const;
    [[nodiscard]] bool backing_off(const Candidate &c, Millis now) const;
    void open(const Candidate &c, Millis now);
    void close();
    bool read_lines(Millis now, const Take &take);
    void at_end(Millis now);
    void finish(std::uint64_t size);
    std::uint64_t decoded_length(const Candidate &c);
    [[nodiscard]] bool stale_partial_tail(Millis now) const;
    void expire_old_files();
    void report_skip(std::uint64_t offset);
    void skip_to(std::uint64_t end);
    [[nodiscard]] bool has_plain_form(std::uint64_t key) const;

    const ShipFile &spec_;
    FollowerSettings s_;
    Cursor &cursor_;
    Ledger &ledger_;
    Say say_;
    HeadCache cache_;
    std::vector<Candidate> listed_;
    bool listed_once_ = false;
    Millis next_list_ = 0;

    std::unique_ptr<Reader> reader_;
    Candidate active_;
    std::string buffer_;    // read, not yet a whole line
    std::uint64_t next_ = 0;  // offset of buffer_'s start (past what an over-long line dropped)
    std::uint64_t taken_ = 0; // end of the last line handed out or skipped: the ledger's read position
    bool skipping_ = false; // inside an over-long line
    bool reread_partial_ = false; // the file ended in a partial line: read it again from its start
    std::uint64_t skip_from_ = 0;
    Millis left_at_ = 0;    // when the live path was first seen holding another file
    Millis tail_since_ = 0; // when the partial last line last changed
    std::uint64_t tail_size_ = 0;

    std::map<Identity, Failure> failures_;
    std::map<std::pair<Identity, std::int64_t>, std::uint64_t> decoded_; // (identity, mtime) -> decoded length
    std::set<std::pair<Identity, std::int64_t>> incomplete_at_end_;     // compressed files read to a cut end
    std::set<Identity> grown_; // compressed copies of finished files that hold more than was read
    std::set<std::uint64_t> warned_partial_;
    std::set<std::pair<std::uint64_t, std::uint64_t>> said_grown_; // (key, size)
    std::set<std::string> copies_; // names of copies said once
    std::set<std::pair<std::uint64_t, std::uint64_t>> reported_skips_; // (key, offset) of over-long lines
    std::set<Identity> seen_incomplete_; // compressed files listed while still incomplete
    std::uint64_t line_bytes_ = 0, lines_ = 0; // for estimates
    bool broken_ = false;
    std::int64_t stream_start_ns_ = 0;
    bool listing_complete_ = false;
    FollowerCounts counts_;
};

} // namespace mtalog::ship
