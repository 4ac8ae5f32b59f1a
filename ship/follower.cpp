#include "follower.hpp"

#include <algorithm>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_identity.hpp"

namespace mtalog::ship {

namespace {

constexpr Millis kListWhileReading = 1000; // rotations, late writes, older files that became readable
constexpr Millis kListWhileIdle = 200;

std::uint64_t count_lines(const std::string &name, std::uint64_t from, std::uint64_t to)
{
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    std::uint64_t lines = 0;
    char buf[65536];
    to = std::min<std::uint64_t>(to, from + (64u << 20)); // bounded work per report
    while (from < to) {
        const ssize_t n = ::pread(fd, buf, std::min<std::uint64_t>(sizeof buf, to - from), static_cast<off_t>(from));
        if (n <= 0)
            break;
        lines += static_cast<std::uint64_t>(std::count(buf, buf + n, '\n'));
        from += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    return lines;
}

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
    if (now >= next_list_ || !reader_)
        list(now);
    if (!reader_ || broken_)
        return false;
    return read_lines(now, take);
}

std::set<std::uint64_t> Follower::listed_keys() const
{
    std::set<std::uint64_t> keys;
    for (const Candidate &c : listed_)
        if (c.key != 0)
            keys.insert(c.key);
    return keys;
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

std::uint64_t Follower::decoded_length(const Candidate &c)
{
    const auto id = std::pair{c.identity(), c.mtime_ns};
    if (const auto it = decoded_.find(id); it != decoded_.end())
        return it->second;
    std::string error;
    std::uint64_t length = 0;
    if (auto r = open_reader(c.name, c.encoding, error)) {
        char buf[65536];
        while (r->read(buf, sizeof buf) > 0) {
        }
        length = r->position();
    }
    decoded_[id] = length;
    return length;
}

void Follower::migrate_legacy()
{
    // mtalog-ship 1 keyed files by the configured path as written: carry
    // each old key's position over to the file's new key.
    for (const Candidate &c : listed_) {
        if (c.key == 0 || c.first_line.empty())
            continue;
        const auto it = cursor_.legacy.find(legacy_key(spec_.path, c.first_line));
        if (it == cursor_.legacy.end())
            continue;
        FileEntry &e = cursor_.files[c.key];
        e.final_offset = std::max(e.final_offset, it->second.offset);
        if (it->second.done) {
            e.done_end = it->second.offset;
            e.done_size = c.encoding == Encoding::plain ? c.size : it->second.offset;
        }
        ledger_.restore(c.key, e.final_offset);
        cursor_.legacy.erase(it);
    }
}

void Follower::list(Millis now)
{
    next_list_ = now + (reader_ ? kListWhileReading : kListWhileIdle);
    listed_ = list_candidates(spec_.path, spec_.header, cache_);
    for (const std::string &note : resolve_keys(listed_, cursor_.files, spec_.path))
        say_(note);
    if (!cursor_.legacy.empty())
        migrate_legacy();
    if (stream_start_ns_ != 0)
        expire_old_files();
    listed_once_ = true;
    for (const Candidate &c : listed_) {
        if (!c.copy_of.empty() && copies_.insert(c.name).second)
            say_("error: \"" + c.name + "\" is a copy of \"" + c.copy_of +
                 "\" (same size and start): not shipped, or its records would be in the stream twice; move it away");
        if (c.unreadable) {
            Failure &f = failures_[c.identity()];
            if (f.error != c.error)
                say_("cannot read \"" + c.name + "\": " + c.error + "; trying again (its records wait)");
            if (f.error != c.error || now >= f.retry_at) {
                ++f.tries;
                f.retry_at = now + s_.retry_max;
            }
            f.error = c.error;
        }
        // A compressed copy of a finished file, made after late writes to
        // it, holds more than was read: decoded once, when it first shows.
        const auto e = cursor_.files.find(c.key);
        if (c.new_form && c.encoding != Encoding::plain && !c.incomplete && e != cursor_.files.end() &&
            e->second.done_end && decoded_length(c) > e->second.done_size)
            grown_.insert(c.identity());
    }
    // The oldest file with work; the file being read keeps going while it
    // has unread lines even when it was deleted or renamed out of sight.
    const Candidate *target = nullptr;
    for (const Candidate &c : listed_) {
        if (c.key == 0 || c.unreadable || backing_off(c, now) || !has_work(c))
            continue;
        // Of a file in two forms (being compressed), read the plain one.
        if (c.encoding != Encoding::plain &&
            std::any_of(listed_.begin(), listed_.end(),
                        [&](const Candidate &o) { return o.key == c.key && o.encoding == Encoding::plain; }))
            continue;
        target = &c;
        break;
    }
    if (reader_) {
        const bool active_listed =
            std::any_of(listed_.begin(), listed_.end(), [&](const Candidate &c) { return is_active(c); });
        const auto n = reader_->plain_now();
        if (!active_listed && n && n->size > next_ + buffer_.size())
            return; // finish what is left of it first
        if (target && is_active(*target))
            return;
        if (!target && active_listed)
            return; // nothing else to do: stay (a live file grows)
    }
    if (target) {
        const FileEntry &e = cursor_.files[target->key];
        const std::uint64_t size = target->encoding == Encoding::plain ? target->size : decoded_length(*target);
        if (e.done_end && size > e.done_size && said_grown_.insert({target->key, size}).second)
            say_("\"" + target->name + "\" grew after it was finished: shipping the " +
                 std::to_string(size - e.done_size) + " new bytes");
        open(*target, now);
    } else {
        close();
    }
}

void Follower::expire_old_files()
{
    for (const Candidate &c : listed_) {
        if (c.key == 0 || c.mtime_ns >= stream_start_ns_ || ledger_.knows(c.key))
            continue;
        FileEntry &e = cursor_.files[c.key];
        if (e.done_end)
            continue;
        const std::uint64_t size = c.encoding == Encoding::plain ? c.size : decoded_length(c);
        e.final_offset = size;
        e.done_end = size;
        e.done_size = size;
        ledger_.restore(c.key, size);
        say_("\"" + c.name + "\" was last written before the oldest message the stream keeps: its records aged out "
             "of the stream (its limits); not shipped again");
    }
}

bool Follower::has_work(const Candidate &c)
{
    const FileEntry &e = cursor_.files[c.key];
    const std::uint64_t pos = ledger_.read_pos(c.key);
    if (e.done_end) {
        if (pos < *e.done_end)
            return true; // a round found records missing
        if (c.encoding == Encoding::plain)
            return c.size > e.done_size; // it grew after it was finished
        return grown_.count(c.identity()) != 0;
    }
    if (c.encoding != Encoding::plain)
        return !incomplete_at_end_.count({c.identity(), c.mtime_ns});
    if (!c.live)
        return true; // read it to its end and finish it
    if (is_active(c)) {
        // What is left is the partial last line the reader holds.
        if (c.size <= next_ + buffer_.size() && buffer_.find('\n') == std::string::npos && !skipping_)
            return false;
        return true;
    }
    return c.size > pos;
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
        ++counts_.open_failures;
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
        if (c.encoding != Encoding::plain && reader->truncated()) {
            incomplete_at_end_.insert({c.identity(), c.mtime_ns});
        } else {
            say_("error: \"" + c.name + "\" holds fewer bytes than were already shipped from it (" +
                 std::to_string(pos) + "): it was truncated or replaced; shipping of \"" + spec_.path + "\" stopped");
            broken_ = true;
        }
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
            if (skipping_) {
                ledger_.skip(key, skip_from_, end);
                cursor_.files[key].skipped[skip_from_] = end; // remembered across restarts
                skipping_ = false;
            } else if (!take(key, offset, std::string_view(buffer_).substr(start, nl - start))) {
                break;
            }
            ledger_.set_read_pos(key, end);
            taken_ = end;
            line_bytes_ += nl + 1 - start;
            ++lines_;
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
                if (!ledger_.known_at(active_.key, skip_from_)) { // not one skipped before a restart
                    ++counts_.skipped_lines;
                    say_("error: \"" + active_.name + "\" has a line longer than " + std::to_string(s_.max_line) +
                         " bytes at offset " + std::to_string(next_) + ": not a record, not shipped (skipped to its end)");
                }
            }
            next_ += buffer_.size();
            buffer_.clear();
        }
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
        buffer_.append(buf, static_cast<std::size_t>(n));
        progressed = true;
    }
}

bool Follower::stale_partial_tail(Millis now) const
{
    return !buffer_.empty() && now - tail_since_ >= s_.rotated_idle;
}

void Follower::at_end(Millis now)
{
    if (buffer_.size() != tail_size_) {
        tail_size_ = buffer_.size();
        tail_since_ = now;
    }
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
        say_("error: \"" + active_.name + "\" shrank from " + std::to_string(taken_) + " to " + std::to_string(st->size) +
             " bytes while being shipped: truncating a log file in place (logrotate's copytruncate) can lose "
             "records; use create (config/logrotate.mtalog). Shipping of \"" +
             spec_.path + "\" stopped");
        broken_ = true;
        close();
        return;
    }
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
    if (!buffer_.empty() && warned_partial_.insert(active_.key).second)
        say_("warning: \"" + active_.name + "\" ends in " + std::to_string(buffer_.size()) +
             " bytes without a newline (a record cut by a crash): not shipped");
    e.done_end = next_;
    e.done_size = size;
    grown_.erase(active_.identity());
    close();
    next_list_ = 0;
}

bool Follower::caught_up(Millis now)
{
    if (broken_)
        return true;
    if (!listed_once_)
        return false;
    if (reader_ && (buffer_.find('\n') != std::string::npos || (!buffer_.empty() && !stale_partial_tail(now))))
        return false;
    for (const Candidate &c : listed_) {
        const auto f = failures_.find(c.identity());
        if (f != failures_.end() && f->second.tries >= 2)
            continue; // tried again after retry_max, and given up on (--once)
        if (c.unreadable)
            return false; // to be tried again
        if (c.key == 0)
            continue; // an incomplete compressed file or a copy: reported
        if (!has_work(c))
            continue;
        if (c.encoding != Encoding::plain &&
            std::any_of(listed_.begin(), listed_.end(),
                        [&](const Candidate &o) { return o.key == c.key && o.encoding == Encoding::plain; }))
            continue;
        return false;
    }
    return true;
}

std::vector<std::string> Follower::given_up() const
{
    std::vector<std::string> names;
    for (const std::string &name : copies_)
        names.push_back("\"" + name + "\" (a copy of another file)");
    for (const Candidate &c : listed_)
        if (const auto f = failures_.find(c.identity()); f != failures_.end() && f->second.tries >= 2)
            names.push_back("\"" + c.name + "\" (" + f->second.error + ")");
    return names;
}

Follower::Lag Follower::unread()
{
    Lag lag;
    const std::uint64_t average = lines_ ? std::max<std::uint64_t>(1, line_bytes_ / lines_) : 200;
    for (const Candidate &c : listed_) {
        if (c.key == 0)
            continue;
        const FileEntry &e = cursor_.files[c.key];
        std::uint64_t pos = is_active(c) ? next_ : ledger_.read_pos(c.key);
        if (c.encoding == Encoding::plain) {
            if (c.size > pos && (!e.done_end || c.size > e.done_size || pos < *e.done_end)) {
                lag.bytes += c.size - pos;
                lag.records += count_lines(c.name, pos, c.size);
            }
        } else if (!e.done_end && !is_active(c) &&
                   std::none_of(listed_.begin(), listed_.end(),
                                [&](const Candidate &o) { return o.key == c.key && o.encoding == Encoding::plain; })) {
            lag.bytes += c.size; // compressed: its decoded size is not known before reading it
            lag.records += c.size * 4 / average; // about four times smaller than the records
        }
    }
    return lag;
}

} // namespace mtalog::ship
