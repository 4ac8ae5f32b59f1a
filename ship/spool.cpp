#include "spool.hpp"

#include "record_id.hpp"
#include "rotation.hpp"

#include <algorithm>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>

namespace mtalog::ship {

std::uint64_t fnv1a(std::string_view data, std::uint64_t seed)
{
    std::uint64_t h = seed;
    for (const unsigned char c : data) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

std::string key_text(std::uint64_t key)
{
    char buf[16];
    return std::string(buf, write_key_hex(buf, key));
}

std::uint64_t canonical_key(std::string_view base, std::string_view line)
{
    return fnv1a(line, fnv1a(std::string(base) + "\n", fnv1a("mtalog-ship key 2\n"))) | 1; // never 0
}

std::uint64_t legacy_key(const std::string &configured_path, std::string_view line)
{
    return fnv1a(line, fnv1a(configured_path + "\n")) | 1;
}

std::size_t header_length(std::string_view head, const std::string &header)
{
    if (header.empty())
        return 0;
    if (head.size() > header.size() && head.compare(0, header.size(), header) == 0 && head[header.size()] == '\n')
        return header.size() + 1;
    // A header another version wrote (other columns): same first column name.
    const std::string_view first_column = std::string_view(header).substr(0, header.find(','));
    const auto nl = head.find('\n');
    if (nl != std::string_view::npos && head.compare(0, first_column.size() + 1, std::string(first_column) + ",") == 0)
        return nl + 1;
    return 0;
}

namespace {

constexpr std::size_t kFirstLineMax = 65536; // a longer first line: not a log file of ours

// Reads what `c` starts with: its head and its first record line (after the
// header), for the canonical key.
HeadCache::Entry read_head(const Candidate &c, const std::string &base, const std::string &header,
                           std::string &error)
{
    HeadCache::Entry e;
    auto reader = open_reader(c.name, c.encoding, error);
    if (!reader)
        return e;
    const std::string header_line = header.empty() ? std::string() : header + "\n";
    std::string data;
    char buf[16384];
    for (;;) {
        // Undecided while what was read could still be the start of the
        // header line.
        const bool may_be_header =
            !header_line.empty() && data.size() < header_line.size() && header_line.compare(0, data.size(), data) == 0;
        if (!may_be_header) {
            const std::size_t start = header_length(data, header);
            if (const auto nl = data.find('\n', start); nl != std::string::npos) {
                e.first_line = data.substr(start, nl - start);
                e.canonical = canonical_key(base, e.first_line);
                if (data.size() >= kHeadBytes)
                    break;
            }
        }
        if (data.size() > header_line.size() + kFirstLineMax && e.canonical == 0)
            break;
        const long n = reader->read(buf, sizeof buf);
        if (n < 0) {
            error = reader->error;
            return HeadCache::Entry{};
        }
        if (n == 0) {
            e.incomplete = reader->truncated();
            break;
        }
        data.append(buf, static_cast<std::size_t>(n));
    }
    data.resize(std::min(data.size(), kHeadBytes));
    e.head = std::move(data);
    return e;
}

} // namespace

const HeadCache::Entry *HeadCache::find(const Candidate &c) const
{
    const bool plain = c.encoding == Encoding::plain;
    for (const Slot &s : slots_) {
        if (s.dev != c.dev || s.ino != c.ino || s.plain != plain)
            continue;
        // A plain file only grows: once its head is whole, it is known.
        if (plain ? c.size >= s.size : (c.size == s.size && c.mtime_ns == s.mtime_ns))
            return &s.entry;
    }
    return nullptr;
}

void HeadCache::put(const Candidate &c, Entry e)
{
    const bool plain = c.encoding == Encoding::plain;
    if (plain && (e.head.size() < kHeadBytes || e.canonical == 0))
        return; // may still change as the file grows: read again next time
    std::erase_if(slots_, [&](const Slot &s) { return s.dev == c.dev && s.ino == c.ino && s.plain == plain; });
    slots_.push_back(Slot{c.dev, c.ino, c.size, c.mtime_ns, plain, std::move(e)});
}

void HeadCache::keep_only(const std::vector<Candidate> &listed)
{
    std::erase_if(slots_, [&](const Slot &s) {
        return std::none_of(listed.begin(), listed.end(), [&](const Candidate &c) {
            return c.dev == s.dev && c.ino == s.ino && (c.encoding == Encoding::plain) == s.plain;
        });
    });
}

bool is_rotated_sibling(std::string_view name, std::string_view base)
{
    if (is_rotated_name(name, base)) // mtalog's own: base.YYYYMMDD-HHMMSS[-N][.gz|.zst]
        return true;
    // logrotate's: base.N or base-YYYYMMDD (dateext), each maybe with -N, .gz or .zst
    if (name.size() <= base.size() + 1 || name.substr(0, base.size()) != base)
        return false;
    const char sep = name[base.size()];
    std::string_view rest = name.substr(base.size() + 1);
    for (std::string_view ext : {".gz", ".zst"})
        if (rest.size() > ext.size() && rest.substr(rest.size() - ext.size()) == ext) {
            rest.remove_suffix(ext.size());
            break;
        }
    const auto digits = [](std::string_view s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (sep == '.')
        return digits(rest) && rest.size() <= 6;
    if (sep != '-')
        return false;
    const auto dash = rest.find('-');
    return digits(rest.substr(0, dash)) && rest.substr(0, dash).size() >= 8 &&
           (dash == std::string_view::npos || digits(rest.substr(dash + 1)));
}

std::optional<FileStat> stat_file(const std::string &name)
{
    struct stat st {};
    if (::lstat(name.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        return std::nullopt;
    FileStat f;
    f.id.dev = st.st_dev;
    f.id.ino = st.st_ino;
    f.size = static_cast<std::uint64_t>(st.st_size);
    f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    struct statx sx {};
    if (::statx(AT_FDCWD, name.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BTIME, &sx) == 0 && (sx.stx_mask & STATX_BTIME))
        f.id.birth_ns = static_cast<std::int64_t>(sx.stx_btime.tv_sec) * 1000000000LL + sx.stx_btime.tv_nsec;
    return f;
}

std::vector<Candidate> list_candidates(const std::string &path, const std::string &header, HeadCache &cache,
                                       bool *complete)
{
    namespace fs = std::filesystem;
    const fs::path p(path);
    const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
    const std::string base = p.filename().string();
    std::vector<Candidate> out;
    const auto consider = [&](const std::string &name, bool live) {
        const auto st = stat_file(name);
        if (!st)
            return;
        Candidate c;
        c.name = name;
        c.encoding = live ? Encoding::plain : encoding_of(name);
        c.dev = st->id.dev;
        c.ino = st->id.ino;
        c.birth_ns = st->id.birth_ns;
        c.size = st->size;
        c.mtime_ns = st->mtime_ns;
        c.live = live;
        HeadCache::Entry e;
        if (const auto *known = cache.find(c)) {
            e = *known;
        } else {
            e = read_head(c, base, header, c.error);
            c.unreadable = !c.error.empty();
            if (!c.unreadable)
                cache.put(c, e);
        }
        c.canonical = e.canonical;
        c.head = std::move(e.head);
        c.first_line = std::move(e.first_line);
        c.incomplete = e.incomplete;
        if (c.canonical != 0 || c.unreadable)
            out.push_back(std::move(c));
    };
    DIR *d = ::opendir(dir.c_str());
    if (complete)
        *complete = d != nullptr;
    if (d) {
        while (const dirent *e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (is_rotated_sibling(name, base))
                consider(dir + "/" + name, false);
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end(), [](const Candidate &a, const Candidate &b) {
        return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.name < b.name;
    });
    consider(path, true);
    cache.keep_only(out);
    return out;
}

std::string_view record_type(std::string_view line, const std::string &format, const std::string &only_type)
{
    if (!only_type.empty())
        return only_type;
    if (format == "mainlog") {
        // time@id@batch@conn@T@...: ids escape '@', so the fifth field is the type
        // letter
        std::size_t at = 0;
        for (int i = 0; i < 4; ++i) {
            at = line.find('@', at);
            if (at == std::string_view::npos)
                return "record";
            ++at;
        }
        switch (at < line.size() ? line[at] : '\0') {
        case 'A':
            return "attempt";
        case 'C':
            return "connection_failure";
        case 'P':
            return "permanent_failure";
        default:
            return "record";
        }
    }
    if (format == "json" || format == "csv") {
        // JSON: {"type":"attempt",...; CSV: attempt,...
        const std::string_view rest =
            format == "json" ? (line.rfind("{\"type\":\"", 0) == 0 ? line.substr(9) : "") : line;
        for (std::string_view t : {"attempt", "connection_failure", "permanent_failure"})
            if (rest.rfind(t, 0) == 0 && rest.size() > t.size() && (rest[t.size()] == '"' || rest[t.size()] == ','))
                return t;
    }
    return "record";
}

} // namespace mtalog::ship
