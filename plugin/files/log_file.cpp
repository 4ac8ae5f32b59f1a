#include "log_file.hpp"

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
