#include "log_file.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mtalog {

int open_log_file(const std::string &path, unsigned mode, bool follow_symlinks) noexcept
{
    const int nofollow = follow_symlinks ? 0 : O_NOFOLLOW;
    for (int attempt = 0; attempt < 8; ++attempt) {
        int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | nofollow, mode);
        if (fd >= 0) {
            (void)::fchmod(fd, mode); // the umask must not change the configured mode
            return fd;
        }
        if (errno != EEXIST)
            return -1;
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | nofollow);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        // Removed between the two opens: try creating it again.
    }
    return -1;
}

HeaderWrite write_header_if_empty(int fd, std::string_view line) noexcept
{
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return {0, errno};
    if (st.st_size != 0)
        return {};
    const ssize_t n = ::write(fd, line.data(), line.size());
    if (n == static_cast<ssize_t>(line.size()))
        return {line.size(), 0};
    const int error = n < 0 ? errno : ENOSPC;
    if (n > 0 && ::fstat(fd, &st) == 0 && st.st_size == n)
        (void)::ftruncate(fd, 0);
    return {0, error};
}

namespace {

// The cut itself: `rfd` reads the file that `fd` writes, `size` long.
TornTail read_and_cut(int fd, int rfd, off_t size, bool cut)
{
    TornTail t;
    char last = '\n';
    if (const ssize_t n = ::pread(rfd, &last, 1, size - 1); n != 1) {
        t.error = n < 0 ? errno : EIO;
        return t;
    }
    if (last == '\n')
        return t;
    // Back from the end, a block at a time, to the last newline.
    char block[4096];
    off_t keep = 0; // bytes up to and with the last newline
    for (off_t end = size; end > 0 && keep == 0;) {
        const off_t from = end > static_cast<off_t>(sizeof block) ? end - static_cast<off_t>(sizeof block) : 0;
        const ssize_t n = ::pread(rfd, block, static_cast<std::size_t>(end - from), from);
        if (n != end - from) {
            t.error = n < 0 ? errno : EIO;
            return t;
        }
        for (ssize_t i = n - 1; i >= 0; --i)
            if (block[i] == '\n') {
                keep = from + i + 1;
                break;
            }
        end = from;
    }
    const std::size_t sample = std::min<std::size_t>(kTornSample, static_cast<std::size_t>(size - keep));
    t.start.resize(sample);
    if (::pread(rfd, t.start.data(), sample, keep) != static_cast<ssize_t>(sample))
        t.start.clear();
    if (!cut) {
        t.torn = static_cast<std::size_t>(size - keep);
        return t;
    }
    if (::ftruncate(fd, keep) != 0) {
        t.error = errno;
        t.start.clear();
        return t;
    }
    t.torn = t.cut = static_cast<std::size_t>(size - keep);
    return t;
}

} // namespace

TornTail torn_tail(int fd, const std::string &path, Torn what)
{
    TornTail t;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        t.error = errno;
        return t;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0)
        return t; // a FIFO or a device has no end to check
    // Read through a descriptor of its own (the log's is write-only), of
    // the very file `fd` names (the identity is compared, so a symbolic
    // link, where allowed, is fine).
    struct stat rst {};
    const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (rfd < 0) {
        t.error = errno;
        return t;
    }
    if (::fstat(rfd, &rst) != 0 || rst.st_dev != st.st_dev || rst.st_ino != st.st_ino) {
        ::close(rfd);
        return t; // replaced meanwhile: checked when it is opened
    }
    t = read_and_cut(fd, rfd, st.st_size, what == Torn::cut);
    ::close(rfd);
    return t;
}

WriteResult write_all(int fd, const char *data, std::size_t size) noexcept
{
    WriteResult r;
    while (r.done < size) {
        const ssize_t n = ::write(fd, data + r.done, size - r.done);
        if (n > 0) {
            r.done += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            r.error = n < 0 ? errno : EIO;
            break;
        }
    }
    return r;
}

} // namespace mtalog
