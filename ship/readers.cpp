#include "readers.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <zlib.h>
#include <zstd.h>

namespace mtalog::ship {

Encoding encoding_of(const std::string &name)
{
    const auto ends = [&](std::string_view s) {
        return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends(".gz"))
        return Encoding::gzip;
    if (ends(".zst"))
        return Encoding::zstd;
    return Encoding::plain;
}

bool Reader::seek(std::uint64_t offset)
{
    if (offset == position())
        return true;
    if (jump(offset))
        return true;
    if (offset < position() && !rewind())
        return false;
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
    [[nodiscard]] std::optional<Now> plain_now() const override
    {
        struct stat st {};
        if (::fstat(fd_, &st) != 0)
            return Now{pos_};
        return Now{static_cast<std::uint64_t>(st.st_size)};
    }
    [[nodiscard]] bool still_holds(std::uint64_t offset, std::string_view bytes) const override
    {
        char buf[4096];
        while (!bytes.empty()) {
            const std::size_t want = std::min(bytes.size(), sizeof buf);
            const ssize_t got = ::pread(fd_, buf, want, static_cast<off_t>(offset));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0 || std::string_view(buf, static_cast<std::size_t>(got)) != bytes.substr(0, static_cast<std::size_t>(got)))
                return false;
            bytes.remove_prefix(static_cast<std::size_t>(got));
            offset += static_cast<std::uint64_t>(got);
        }
        return true;
    }

protected:
    bool rewind() override { return jump(0); }
    bool jump(std::uint64_t offset) override
    {
        pos_ = offset; // pread at the offset; a short file reads 0 there
        return true;
    }

private:
    int fd_;
    std::uint64_t pos_ = 0;
};

class GzipReader final : public Reader {
public:
    GzipReader(gzFile f, int fd) : f_(f), fd_(fd), buf_(kChunk) {}
    ~GzipReader() override { gzclose(f_); }
    // zlib hands out a different amount of a cut stream's end depending on
    // the sizes asked for, so it is always asked for kChunk bytes: what a
    // read from a position gives is then the same however it was reached.
    long read(char *buf, std::size_t n) override
    {
        if (have_ == used_) {
            const int got = gzread(f_, buf_.data(), static_cast<unsigned>(kChunk));
            int code = Z_OK;
            const char *text = gzerror(f_, &code);
            if (got < 0 || (code != Z_OK && code != Z_BUF_ERROR)) {
                error = text ? text : "gzip read error";
                return -1;
            }
            // zlib reports a stream that ends early ("unexpected end of
            // file") as Z_BUF_ERROR, after handing out what it decoded.
            truncated_ = got == 0 && code == Z_BUF_ERROR;
            have_ = static_cast<std::size_t>(got);
            used_ = 0;
        }
        const std::size_t take = std::min(n, have_ - used_);
        std::memcpy(buf, buf_.data() + used_, take);
        used_ += take;
        pos_ += take;
        return static_cast<long>(take);
    }
    [[nodiscard]] std::uint64_t position() const override { return pos_; }
    [[nodiscard]] bool truncated() const override { return truncated_; }
    [[nodiscard]] std::pair<dev_t, ino_t> identity() const override { return identity_of(fd_); }

protected:
    bool rewind() override
    {
        if (gzrewind(f_) != 0)
            return false;
        pos_ = 0;
        have_ = used_ = 0;
        truncated_ = false;
        return true;
    }

private:
    static constexpr std::size_t kChunk = 64 * 1024;
    gzFile f_;
    int fd_; // owned by f_
    std::vector<char> buf_;
    std::size_t have_ = 0, used_ = 0; // decoded bytes in buf_, and those handed out
    std::uint64_t pos_ = 0;
    bool truncated_ = false;
};

class ZstdReader final : public Reader {
public:
    explicit ZstdReader(int fd) : fd_(fd), ds_(ZSTD_createDStream()), in_buf_(ZSTD_DStreamInSize()) {}
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
                if (got < 0 && errno == EINTR)
                    continue;
                if (got < 0) {
                    error = std::strerror(errno);
                    return -1;
                }
                eof = got == 0;
                in_ = ZSTD_inBuffer{in_buf_.data(), static_cast<std::size_t>(got), 0};
            }
            // With no input left this still flushes what the decoder holds.
            const std::size_t consumed_before = in_.pos;
            const std::size_t r = ZSTD_decompressStream(ds_, &out, &in_);
            if (ZSTD_isError(r)) {
                error = ZSTD_getErrorName(r);
                return -1;
            }
            // 0: a frame just ended. Between frames the decoder asks for the
            // next frame's header, which is not a cut; a frame that took
            // input and has not ended is one at the end of the file.
            const bool took = in_.pos > consumed_before;
            any_input_ = any_input_ || took;
            if (r == 0)
                mid_frame_ = false;
            else if (took)
                mid_frame_ = true;
            if (eof && out.pos == 0) {
                truncated_ = mid_frame_ || !any_input_;
                break;
            }
        }
        pos_ += out.pos;
        return static_cast<long>(out.pos);
    }
    [[nodiscard]] std::uint64_t position() const override { return pos_; }
    [[nodiscard]] bool truncated() const override { return truncated_; }
    [[nodiscard]] std::pair<dev_t, ino_t> identity() const override { return identity_of(fd_); }

protected:
    bool rewind() override
    {
        if (::lseek(fd_, 0, SEEK_SET) != 0)
            return false;
        ZSTD_DCtx_reset(ds_, ZSTD_reset_session_only);
        in_ = ZSTD_inBuffer{nullptr, 0, 0};
        pos_ = 0;
        truncated_ = mid_frame_ = any_input_ = false;
        return true;
    }

private:
    int fd_;
    ZSTD_DStream *ds_;
    std::vector<char> in_buf_;
    ZSTD_inBuffer in_{nullptr, 0, 0};
    std::uint64_t pos_ = 0;
    bool mid_frame_ = false, any_input_ = false, truncated_ = false;
};

} // namespace

std::unique_ptr<Reader> open_reader(const std::string &name, Encoding encoding, std::string &error)
{
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        error = std::strerror(errno);
        return nullptr;
    }
    switch (encoding) {
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
    ::close(fd);
    return nullptr;
}

} // namespace mtalog::ship
