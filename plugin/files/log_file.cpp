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
        int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | nofollow, mode);
        if (fd >= 0) {
            (void)::fchmod(fd, mode); // the umask must not change the configured mode
            return fd;
        }
        if (errno != EEXIST)
            return -1;
        // Read access too, to check the file's end (cut_torn_tail); a file
        // this user may only write is written all the same.
        fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC | nofollow);
        if (fd < 0 && errno == EACCES)
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

TornTail cut_torn_tail(int fd)
{
    TornTail t;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        t.error = errno;
        return t;
    }
    const off_t size = st.st_size;
    char last = '\n';
    if (size == 0 || ::pread(fd, &last, 1, size - 1) != 1 || last == '\n')
        return t;
    // Back from the end, a block at a time, to the last newline.
    char block[4096];
    off_t keep = 0; // bytes up to and with the last newline
    for (off_t end = size; end > 0 && keep == 0;) {
        const off_t from = end > static_cast<off_t>(sizeof block) ? end - static_cast<off_t>(sizeof block) : 0;
        const ssize_t n = ::pread(fd, block, static_cast<std::size_t>(end - from), from);
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
    if (::pread(fd, t.start.data(), sample, keep) != static_cast<ssize_t>(sample))
        t.start.clear();
    if (::ftruncate(fd, keep) != 0) {
        t.error = errno;
        t.start.clear();
        return t;
    }
    t.cut = static_cast<std::size_t>(size - keep);
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
