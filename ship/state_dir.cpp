#include "state_dir.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>

namespace mtalog::ship {

StateDir::~StateDir()
{
    if (fd_ >= 0)
        ::close(fd_); // releases the lock
}

std::optional<std::string> StateDir::open(const std::string &dir)
{
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        return "state_dir \"" + dir + "\" is not a writable directory: " + std::strerror(errno);
    const std::string path = dir + "/lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0)
        return "state_dir \"" + dir + "\": " + path + ": " + std::strerror(errno);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = {};
        (void)::pread(fd_, pid, sizeof pid - 1, 0);
        const std::string holder = pid[0] ? " (process " + std::string(pid, strcspn(pid, "\n")) + ")" : "";
        ::close(fd_);
        fd_ = -1;
        return "state_dir \"" + dir + "\" is in use by another mtalog-ship" + holder +
               ": one shipper (or --audit) per state_dir at a time";
    }
    const std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0)
        (void)::pwrite(fd_, me.data(), me.size(), 0);
    return std::nullopt;
}

} // namespace mtalog::ship
