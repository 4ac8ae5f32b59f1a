// The follower's view of the files: listing them, which one has work, what
// is left to ship (see follower.hpp).
#include "follower.hpp"

#include <algorithm>
#include <fcntl.h>
#include <unistd.h>

#include "file_identity.hpp"

namespace mtalog::ship {

namespace {

constexpr Millis kListWhileReading = 1000; // rotations, late writes, older files that became readable
constexpr Millis kListWhileIdle = 200;
constexpr std::uint64_t kWholeFile = std::uint64_t{1} << 62; // an offset past any file's end

std::uint64_t count_lines(const std::string &name, std::uint64_t from, std::uint64_t to)
{
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    std::uint64_t lines = 0;
    char buf[65536];
    to = std::min<std::uint64_t>(to, from + (8u << 20)); // bounded work per report
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

std::set<std::uint64_t> Follower::listed_keys() const
{
    std::set<std::uint64_t> keys;
    for (const Candidate &c : listed_)
        if (c.key != 0)
            keys.insert(c.key);
    return keys;
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
            e.done_size = it->second.offset; // bytes past it (written late) are shipped
        }
        ledger_.restore(c.key, e.final_offset);
        cursor_.legacy.erase(it);
    }
}

std::optional<std::uint64_t> Follower::live_file_shrunk(std::uint64_t &size) const
{
    // Stated here, not taken from the listing: a file cut inside its first
    // line is not listed (it has no key from its content any more). Found by
    // identity; without a birth time an inode reused by a new file would
    // look the same, so then only a file not finished counts.
    const auto now = stat_file(spec_.path);
    if (!now)
        return std::nullopt;
    size = now->size;
    std::uint64_t listed_key = 0; // its key by content, when it is listed
    for (const Candidate &c : listed_)
        if (c.live)
            listed_key = c.key;
    for (const auto &[key, e] : cursor_.files)
        if ((now->id.birth_ns != 0 || (!e.done_end && (listed_key == 0 || listed_key == key))) &&
            std::find(e.ids.begin(), e.ids.end(), now->id) != e.ids.end() && ledger_.read_pos(key) > now->size)
            return ledger_.read_pos(key);
    return std::nullopt;
}

void Follower::list(Millis now)
{
    next_list_ = now + (reader_ ? kListWhileReading : kListWhileIdle);
    listed_ = list_candidates(spec_.path, spec_.header, cache_, &listing_complete_);
    for (const std::string &note : resolve_keys(listed_, cursor_.files, spec_.path))
        say_(note);
    if (!cursor_.legacy.empty())
        migrate_legacy();
    if (stream_start_ns_ != 0) {
        expire_old_files();
        stream_start_ns_ = 0; // once, after the lost cursor's first round
    }
    listed_once_ = true;
    if (std::uint64_t size = 0; const auto shrunk = live_file_shrunk(size)) {
        stop_shrunk(spec_.path, *shrunk, size); // seen here whether or not it is being read
        return;
    }
    for (const Candidate &c : listed_) {
        if (!c.copy_of.empty() && copies_.insert(c.name).second)
            say_("error: \"" + c.name + "\" is a copy of \"" + c.copy_of +
                 "\" (same size and start): not shipped, or its records would be in the stream twice; move it away");
        if (!c.live && c.encoding == Encoding::plain && c.key != 0 && !c.unreadable &&
            c.size < ledger_.read_pos(c.key)) {
            stop_shrunk(c.name, ledger_.read_pos(c.key), c.size); // a rotated file, truncated
            return;
        }
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
        // it, holds more than was read: decoded once, when it first shows
        // complete (logrotate's gzip writes it in place: listed incomplete
        // first).
        if (c.encoding == Encoding::plain)
            continue;
        if (c.incomplete) {
            seen_incomplete_.insert(c.identity());
            continue;
        }
        const auto e = cursor_.files.find(c.key);
        if ((c.new_form || seen_incomplete_.erase(c.identity()) != 0) && e != cursor_.files.end() &&
            e->second.done_end && decoded_length(c) > e->second.done_size)
            grown_.insert(c.identity());
    }
    // The oldest file with work; the file being read keeps going while it
    // has unread lines even when it was deleted or renamed out of sight.
    const Candidate *target = nullptr;
    for (const Candidate &c : listed_) {
        if (c.key == 0 || c.unreadable || backing_off(c, now) || !has_work(c))
            continue;
        if (c.encoding != Encoding::plain && has_plain_form(c.key))
            continue; // of a file in two forms (being compressed), the plain one is read
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
        if (const FileEntry &e = cursor_.files[target->key]; e.done_end) {
            const std::uint64_t size = target->encoding == Encoding::plain ? target->size : decoded_length(*target);
            if (size > e.done_size && said_grown_.insert({target->key, size}).second)
                say_("\"" + target->name + "\" grew after it was finished: shipping the " +
                     std::to_string(size - e.done_size) + " new bytes");
        }
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
        // All of it is final, whatever its decoded size (not decoded for this).
        const std::uint64_t size = c.encoding == Encoding::plain ? c.size : kWholeFile;
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
        if (c.size <= next_ + buffer_.size() && buffer_.find('\n') == std::string::npos)
            return false; // (or an over-long line being skipped)
        return true;
    }
    return c.size > pos;
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
        if (!has_work(c) || (c.encoding != Encoding::plain && has_plain_form(c.key)))
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

bool Follower::has_plain_form(std::uint64_t key) const
{
    return std::any_of(listed_.begin(), listed_.end(),
                       [&](const Candidate &o) { return o.key == key && o.encoding == Encoding::plain; });
}

Follower::Lag Follower::unread()
{
    Lag lag;
    const std::uint64_t average = lines_ ? std::max<std::uint64_t>(1, line_bytes_ / lines_) : 200;
    for (const Candidate &c : listed_) {
        if (c.key == 0)
            continue;
        const FileEntry &e = cursor_.files[c.key];
        const std::uint64_t pos = is_active(c) ? next_ : ledger_.read_pos(c.key);
        if (c.encoding == Encoding::plain) {
            if (c.size > pos && (!e.done_end || c.size > e.done_size || pos < *e.done_end)) {
                lag.bytes += c.size - pos;
                // Counted in the file being read (bounded), estimated in the
                // others: a report must not read a backlog.
                lag.records += is_active(c) ? count_lines(c.name, pos, c.size) : (c.size - pos) / average;
            }
        } else if (!is_active(c) && !has_plain_form(c.key)) {
            if (!e.done_end) {
                lag.bytes += c.size; // compressed: its decoded size is not known before reading it
                lag.records += c.size * 4 / average; // about four times smaller than the records
            } else if (pos < *e.done_end) {
                // Finished, and a round sent records of it back: what is
                // left to read again is known exactly.
                lag.bytes += *e.done_end - pos;
                lag.records += std::max<std::uint64_t>(1, (*e.done_end - pos) / average);
            } else if (grown_.count(c.identity())) {
                lag.bytes += c.size; // it grew after it was finished: estimated as above
                lag.records += std::max<std::uint64_t>(1, c.size * 4 / average);
            }
        }
    }
    return lag;
}

} // namespace mtalog::ship
