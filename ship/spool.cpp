#include "spool.hpp"

#include "rotation.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

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

char *write_key_hex(char *out, std::uint64_t key)
{
    static constexpr char hex[] = "0123456789abcdef";
    for (int shift = 60; shift >= 0; shift -= 4)
        *out++ = hex[(key >> shift) & 0xf];
    return out;
}

std::string key_text(std::uint64_t key)
{
    char buf[16];
    return std::string(buf, write_key_hex(buf, key));
}

bool Reader::skip_to(std::uint64_t offset)
{
    char buf[65536];
    while (position() < offset) {
        const long n = read(buf, static_cast<std::size_t>(std::min<std::uint64_t>(sizeof buf, offset - position())));
        if (n <= 0)
            return false;
    }
    return true;
}

namespace {

std::pair<dev_t, ino_t> identity_of(int fd)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return {0, 0};
    return {st.st_dev, st.st_ino};
}

class PlainReader final : public Reader {
public:
    explicit PlainReader(int fd) : fd_(fd) {}
    ~PlainReader() override { ::close(fd_); }
    long read(char *buf, std::size_t n) override
    {
        for (;;) {
            const ssize_t got = ::pread(fd_, buf, n, static_cast<off_t>(pos_));
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0) {
                error = std::strerror(errno);
                return -1;
            }
            pos_ += static_cast<std::uint64_t>(got);
            return got;
        }
    }
    [[nodiscard]] std::uint64_t position() const override { return pos_; }
    [[nodiscard]] std::pair<dev_t, ino_t> identity() const override { return identity_of(fd_); }
    bool rewind() override
    {
        pos_ = 0;
        return true;
    }
    [[nodiscard]] std::optional<Now> plain_now() const override
    {
        struct stat st {};
        if (::fstat(fd_, &st) != 0)
            return Now{pos_, 0};
        return Now{static_cast<std::uint64_t>(st.st_size),
                   static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
    }

private:
    int fd_;
    std::uint64_t pos_ = 0;
};

class GzipReader final : public Reader {
public:
    GzipReader(gzFile f, int fd) : f_(f), fd_(fd) {}
    [[nodiscard]] std::pair<dev_t, ino_t> identity() const override { return identity_of(fd_); }
    ~GzipReader() override { gzclose(f_); }
    long read(char *buf, std::size_t n) override
    {
        const int got = gzread(f_, buf, static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30)));
        if (got < 0) {
            int code = 0;
            error = gzerror(f_, &code);
            return -1;
        }
        pos_ += static_cast<std::uint64_t>(got);
        return got;
    }
    [[nodiscard]] std::uint64_t position() const override { return pos_; }

private:
    gzFile f_;
    int fd_; // owned by f_
    std::uint64_t pos_ = 0;
};

class ZstdReader final : public Reader {
public:
    explicit ZstdReader(int fd) : fd_(fd), ds_(ZSTD_createDStream()), in_buf_(ZSTD_DStreamInSize()) {}
    [[nodiscard]] std::pair<dev_t, ino_t> identity() const override { return identity_of(fd_); }
    ~ZstdReader() override
    {
        ZSTD_freeDStream(ds_);
        ::close(fd_);
    }
    long read(char *buf, std::size_t n) override
    {
        ZSTD_outBuffer out{buf, n, 0};
        while (out.pos == 0) {
            bool eof = false;
            if (in_.pos == in_.size) {
                const ssize_t got = ::read(fd_, in_buf_.data(), in_buf_.size());
                if (got < 0) {
                    error = std::strerror(errno);
                    return -1;
                }
                eof = got == 0;
                if (!eof)
                    in_ = ZSTD_inBuffer{in_buf_.data(), static_cast<std::size_t>(got), 0};
            }
            // With no input left this still flushes what the decoder holds.
            const std::size_t r = ZSTD_decompressStream(ds_, &out, &in_);
            if (ZSTD_isError(r)) {
                error = ZSTD_getErrorName(r);
                return -1;
            }
            if (eof && out.pos == 0)
                break; // the end
        }
        pos_ += out.pos;
        return static_cast<long>(out.pos);
    }
    [[nodiscard]] std::uint64_t position() const override { return pos_; }

private:
    int fd_;
    ZSTD_DStream *ds_;
    std::vector<char> in_buf_;
    ZSTD_inBuffer in_{nullptr, 0, 0};
    std::uint64_t pos_ = 0;
};

} // namespace

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

// The key of a file: its first record line, after the header when the file
// starts with it; 0 when there is no complete record yet.
std::uint64_t key_of(Reader &r, const std::string &path, const std::string &header)
{
    const std::string header_line = header.empty() ? std::string() : header + "\n";
    std::string head;
    char buf[4096];
    for (;;) {
        // Undecided while what was read could still be the start of the header
        // line.
        const bool may_be_header =
            !header_line.empty() && head.size() < header_line.size() && header_line.compare(0, head.size(), head) == 0;
        if (!may_be_header) {
            const std::size_t start = header_length(head, header);
            const auto nl = head.find('\n', start);
            if (nl != std::string::npos)
                return fnv1a(std::string_view(head).substr(start, nl - start),
                             fnv1a(path + "\n")) | 1; // never 0
        }
        if (head.size() > header_line.size() + 65536)
            return 0; // no line end in sight: not a log file of ours
        const long n = r.read(buf, sizeof buf);
        if (n <= 0)
            return 0;
        head.append(buf, static_cast<std::size_t>(n));
    }
}

Encoding encoding_of(const std::string &name)
{
    auto ends = [&](std::string_view s) {
        return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends(".gz"))
        return Encoding::gzip;
    if (ends(".zst"))
        return Encoding::zstd;
    return Encoding::plain;
}

} // namespace

std::unique_ptr<Reader> open_reader(const Candidate &c, std::string &error)
{
    const int fd = ::open(c.name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        error = std::strerror(errno);
        return nullptr;
    }
    switch (c.encoding) {
    case Encoding::plain:
        return std::make_unique<PlainReader>(fd);
    case Encoding::zstd:
        return std::make_unique<ZstdReader>(fd);
    case Encoding::gzip:
        if (gzFile f = gzdopen(fd, "rb"))
            return std::make_unique<GzipReader>(f, fd);
        ::close(fd);
        error = "cannot open as gzip";
        return nullptr;
    }
    return nullptr;
}

std::unique_ptr<Reader> open_listed(const Candidate &c, const std::string &path, const std::string &header,
                                    std::string &error)
{
    auto reader = open_reader(c, error);
    if (!reader)
        return nullptr;
    if (reader->identity() != std::make_pair(c.dev, c.ino)) {
        error = "replaced since it was listed";
        return nullptr;
    }
    // A plain file's inode may have been freed and given to a new file in
    // between: its first record says which file it is.
    if (c.encoding == Encoding::plain) {
        const std::uint64_t key = key_of(*reader, path, header);
        if (key != c.key || !reader->rewind()) {
            error = "replaced since it was listed";
            return nullptr;
        }
    }
    return reader;
}

std::optional<std::uint64_t> KeyCache::find(const Candidate &c) const
{
    for (const Candidate &e : entries_)
        if (e.dev == c.dev && e.ino == c.ino && e.size == c.size && e.mtime_ns == c.mtime_ns)
            return e.key;
    return std::nullopt;
}

void KeyCache::put(const Candidate &c)
{
    if (entries_.size() >= 256)
        entries_.erase(entries_.begin());
    entries_.push_back(c);
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

std::vector<Candidate> list_candidates(const std::string &path, const std::string &header, KeyCache &cache)
{
    namespace fs = std::filesystem;
    const fs::path p(path);
    const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
    const std::string base = p.filename().string();
    std::vector<Candidate> out;
    auto consider = [&](const std::string &name, bool live) {
        struct stat st {};
        if (::lstat(name.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            return;
        Candidate c;
        c.name = name;
        c.encoding = live ? Encoding::plain : encoding_of(name);
        c.dev = st.st_dev;
        c.ino = st.st_ino;
        c.size = static_cast<std::uint64_t>(st.st_size);
        c.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
        c.live = live;
        if (c.encoding != Encoding::plain) {
            if (auto k = cache.find(c)) {
                c.key = *k;
                if (c.key != 0)
                    out.push_back(std::move(c));
                return;
            }
        }
        std::string error;
        auto reader = open_reader(c, error);
        if (!reader)
            return; // listed again next time
        c.key = key_of(*reader, path, header);
        if (c.encoding != Encoding::plain)
            cache.put(c);
        if (c.key != 0)
            out.push_back(std::move(c));
    };
    if (DIR *d = ::opendir(dir.c_str())) {
        while (const dirent *e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name.size() <= base.size() + 1 || name.compare(0, base.size(), base) != 0)
                continue;
            if (is_rotated_sibling(name, base))
                consider(dir + "/" + name, false);
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end(), [](const Candidate &a, const Candidate &b) {
        return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.name < b.name;
    });
    consider(path, true);
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
