#include "follower.hpp"

#include <algorithm>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace mtalog::ship {

namespace {
constexpr std::size_t kReadPerCall = 8u << 20; // bytes read_lines reads before it returns
} // namespace

Follower::Follower(const ShipFile &spec, const FollowerSettings &settings, Cursor &cursor, Ledger &ledger, Say say)
    : spec_(spec), s_(settings), cursor_(cursor), ledger_(ledger), say_(std::move(say))
{
}

Follower::~Follower() = default;
Follower::Follower(Follower &&) noexcept = default;

void Follower::refresh(Millis now)
{
    if (!broken_ && now >= next_list_)
        list(now);
}

bool Follower::pump(Millis now, const Take &take)
{
    if (broken_)
        return false;
    if (now >= next_list_)
        list(now);
    if (!reader_ || broken_)
        return false;
    return read_lines(now, take);
}

bool Follower::is_active(const Candidate &c) const
{
    return reader_ && c.identity() == active_.identity() && c.encoding == active_.encoding;
}

bool Follower::backing_off(const Candidate &c, Millis now) const
{
    const auto f = failures_.find(c.identity());
    return f != failures_.end() && now < f->second.retry_at;
}

void Follower::open(const Candidate &c, Millis now)
{
    close();
    std::string error;
    auto reader = open_reader(c.name, c.encoding, error);
    if (reader && reader->identity() != c.identity()) {
        reader.reset(); // replaced since it was listed
        next_list_ = 0;
        return;
    }
    if (!reader) {
        Failure &f = failures_[c.identity()];
        ++f.tries;
        if (f.error != error)
            say_("cannot open \"" + c.name + "\": " + error + "; trying again after retry_max (its records wait)");
        f.error = error;
        f.retry_at = now + s_.retry_max;
        next_list_ = 0; // the next file meanwhile
        return;
    }
    failures_.erase(c.identity());
    // A new file's header line is not a record.
    if (const std::size_t header = header_length(c.head, spec_.header); header != 0 && ledger_.read_pos(c.key) < header) {
        ledger_.skip(c.key, 0, header);
        ledger_.set_read_pos(c.key, header);
    }
    const std::uint64_t pos = ledger_.read_pos(c.key);
    if (!reader->seek(pos)) {
        // A compressed file that ends before what was read of its plain
        // form: cut (or still being written); read again when it changes.
        // (A plain file's shrinking is seen at its end: copytruncate.)
        incomplete_at_end_.insert({c.identity(), c.mtime_ns});
        return;
    }
    reader_ = std::move(reader);
    active_ = c;
    next_ = taken_ = pos;
    buffer_.clear();
    skipping_ = false;
    left_at_ = 0;
    tail_since_ = now;
    tail_size_ = 0;
}

void Follower::close()
{
    reader_.reset();
    buffer_.clear();
    skipping_ = false;
}

bool Follower::read_lines(Millis now, const Take &take)
{
    const std::uint64_t key = active_.key;
    bool progressed = false;
    char buf[65536];
    // Progress is a line taken or a byte not read before: reading a partial
    // last line again (below) is neither, or a file that ends in one would
    // keep the main loop from ever waiting.
    const std::uint64_t read_before = next_ + buffer_.size();
    std::size_t read_this_call = 0;
    if (std::exchange(reread_partial_, false)) {
        // The file ended in a partial line last time: it is read again from
        // its start with what follows, so that a writer that took it back
        // (mtalog after a short write) and wrote another record there does
        // not get the old bytes glued to the new record.
        buffer_.clear();
        reader_->seek(next_);
    }
    for (;;) {
        // A round found records behind the reader missing: read them again.
        if (const std::uint64_t pos = ledger_.read_pos(key); pos < taken_) {
            if (!reader_->seek(pos)) {
                close();
                next_list_ = 0;
                return progressed;
            }
            next_ = taken_ = pos;
            buffer_.clear();
            skipping_ = false;
        }
        std::size_t start = 0;
        for (std::size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
            const std::uint64_t offset = next_ + start, end = next_ + nl + 1;
            if (!skipping_ && nl - start > s_.max_line) {
                skipping_ = true; // whole, but too long to send
                skip_from_ = offset;
                report_skip(offset);
            }
            if (skipping_) {
                skip_to(end);
            } else if (!take(key, offset, std::string_view(buffer_).substr(start, nl - start))) {
                break;
            }
            ledger_.set_read_pos(key, end);
            taken_ = end;
            line_bytes_ += nl + 1 - start;
            ++lines_;
            progressed = true;
        }
        buffer_.erase(0, start);
        next_ += start;
        if (buffer_.find('\n') != std::string::npos)
            return true; // take said stop
        if (buffer_.size() > s_.max_line) {
            // No newline in sight: a line longer than any record (a NUL-filled
            // tail after a power loss, say). Dropped up to its newline.
            if (!skipping_) {
                skipping_ = true;
                skip_from_ = next_;
                report_skip(next_);
            }
            next_ += buffer_.size();
            buffer_.clear();
        }
        const bool carried = !buffer_.empty() && !skipping_; // a partial line, from the file's end
        const long n = reader_->read(buf, sizeof buf);
        if (n < 0) {
            say_("error reading \"" + active_.name + "\": " + reader_->error + "; trying again");
            Failure &f = failures_[active_.identity()];
            f.error = reader_->error;
            f.retry_at = now + s_.retry_max;
            close();
            next_list_ = 0;
            return progressed;
        }
        if (n == 0) {
            at_end(now);
            return progressed;
        }
        progressed = progressed || reader_->position() > read_before;
        if (carried && !reader_->still_holds(next_, buffer_)) {
            // The partial line is no longer there: its writer took it back
            // and wrote on (mtalog cutting a torn tail at its start). Read
            // again from where it began, so that no new record is glued to
            // the old bytes.
            buffer_.clear();
            if (!reader_->seek(next_)) {
                close();
                next_list_ = 0;
                return progressed;
            }
            continue;
        }
        buffer_.append(buf, static_cast<std::size_t>(n));
        // Lines the stream already holds fill no window: without a bound,
        // one call could read a whole large file before the main loop next
        // looks at a stop, acknowledgements or the status.
        if ((read_this_call += static_cast<std::size_t>(n)) >= kReadPerCall)
            return true;
    }
}

void Follower::report_skip(std::uint64_t offset)
{
    // Once per line, across restarts (a skip is remembered in the cursor)
    // and a reading position moved back.
    if (ledger_.known_at(active_.key, offset) || !reported_skips_.insert({active_.key, offset}).second)
        return;
    ++counts_.skipped_lines;
    say_("error: \"" + active_.name + "\" has a line longer than " + std::to_string(s_.max_line) + " bytes at offset " +
         std::to_string(offset) + ": not a record, not shipped (skipped to its end)");
}

void Follower::skip_to(std::uint64_t end)
{
    ledger_.skip(active_.key, skip_from_, end);
    cursor_.files[active_.key].skipped[skip_from_] = end; // remembered across restarts
    skipping_ = false;
}

bool Follower::stale_partial_tail(Millis now) const
{
    return !buffer_.empty() && now - tail_since_ >= s_.rotated_idle;
}

void Follower::stop_shrunk(const std::string &name, std::uint64_t from, std::uint64_t to)
{
    say_("error: \"" + name + "\" shrank from " + std::to_string(from) + " to " + std::to_string(to) +
         " bytes while being shipped: truncating a log file in place (logrotate's copytruncate) can lose "
         "records; use create (config/logrotate.mtalog). Shipping of \"" +
         spec_.path + "\" stopped");
    broken_ = true;
    close();
}

void Follower::at_end(Millis now)
{
    if (buffer_.size() != tail_size_) {
        tail_size_ = buffer_.size();
        tail_since_ = now;
    }
    reread_partial_ = !buffer_.empty() && !skipping_ && active_.encoding == Encoding::plain;
    if (active_.encoding != Encoding::plain) {
        const std::uint64_t decoded = reader_->position();
        if (reader_->truncated()) {
            // Still being written, or cut by a crash: what it holds so far is
            // shipped; it is read again once it changes.
            if (incomplete_at_end_.insert({active_.identity(), active_.mtime_ns}).second)
                say_("\"" + active_.name + "\" ends before its compressed data does (being written, or cut): " +
                     "its records so far are shipped; it is read again when it changes");
            close();
            next_list_ = 0;
            return;
        }
        finish(decoded);
        return;
    }
    const auto st = reader_->plain_now();
    if (st->size < taken_) {
        stop_shrunk(active_.name, taken_, st->size);
        return;
    }
    if (st->size > reader_->position())
        return; // written since the read that found the end: read on
    if (st->size < next_ + buffer_.size()) {
        // Only a partial last line was taken back (mtalog undoes a short
        // write on a full disk): read again from the last whole line.
        next_ = taken_;
        buffer_.clear();
        skipping_ = false;
        reader_->seek(next_);
        return;
    }
    struct stat live {};
    if (::stat(spec_.path.c_str(), &live) == 0 && live.st_ino == active_.ino && live.st_dev == active_.dev) {
        left_at_ = 0;
        if (stale_partial_tail(now) && warned_partial_.insert(active_.key).second)
            say_("warning: \"" + active_.name + "\" ends in " + std::to_string(buffer_.size()) +
                 " bytes without a newline that have not changed for rotated_idle (a writer stopped mid-record): "
                 "not shipped until their newline comes");
        return; // the live file: more will come
    }
    if (left_at_ == 0)
        left_at_ = now;
    if (now - left_at_ < s_.rotated_idle)
        return;
    finish(st->size);
}

void Follower::finish(std::uint64_t size)
{
    FileEntry &e = cursor_.files[active_.key];
    if (skipping_) { // an over-long line cut by the file's end: skipped to it
        skip_to(next_ + buffer_.size());
        ledger_.set_read_pos(active_.key, next_ + buffer_.size());
        next_ += buffer_.size();
        buffer_.clear();
    }
    if (!buffer_.empty() && warned_partial_.insert(active_.key).second)
        say_("warning: \"" + active_.name + "\" ends in " + std::to_string(buffer_.size()) +
             " bytes without a newline (a record cut by a crash): not shipped");
    e.done_end = next_;
    e.done_size = size;
    grown_.erase(active_.identity());
    close();
    next_list_ = 0;
}

} // namespace mtalog::ship
