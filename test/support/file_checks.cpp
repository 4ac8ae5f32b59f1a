#include "file_checks.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace testing {

bool wait_until(const std::function<bool()> &condition, std::chrono::milliseconds limit)
{
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > end)
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

void log_numbered(Harness &h, int first, int count)
{
    for (int i = first; i < first + count; ++i) {
        timeval now{1700000000, 0};
        h.core().log_connection_failure(nullptr, 0, nullptr, i, &now);
    }
}

std::vector<int> numbers_in(const std::string &path)
{
    std::vector<int> numbers;
    for (const auto &line : read_lines(path)) {
        // 1700000000@@@@C@@@@@<slot>@0@
        const auto end = line.rfind("@0@");
        const auto start = end == std::string::npos || end == 0 ? std::string::npos : line.rfind('@', end - 1);
        if (start == std::string::npos)
            continue;
        numbers.push_back(std::stoi(line.substr(start + 1, end - start - 1)));
    }
    return numbers;
}

void check_whole_lines(const std::string &path)
{
    const std::string text = read_file(path);
    if (!text.empty())
        CHECK(text.back() == '\n');
    std::size_t broken = 0;
    std::string first_broken;
    for (const auto &line : read_lines(path)) {
        if (!line.starts_with("1700000000@@@@C@@@") || !line.ends_with("@0@")) {
            if (broken++ == 0)
                first_broken = line;
        }
    }
    INFO("first broken line: " << first_broken);
    CHECK(broken == 0);
}

namespace {

std::map<std::string, long long> parse_counters(const std::string &rest)
{
    std::map<std::string, long long> counters;
    std::istringstream in(rest);
    std::string item;
    while (in >> item) {
        const auto eq = item.find('=');
        if (eq != std::string::npos)
            counters[item.substr(0, eq)] = std::stoll(item.substr(eq + 1));
    }
    return counters;
}

} // namespace

std::map<std::string, long long> closing_counters(const Harness &h, const std::string &path)
{
    const std::string key = "closed \"" + path + "\": ";
    for (const auto &p : h.panics()) {
        const auto at = p.find(key);
        if (at != std::string::npos)
            return parse_counters(p.substr(at + key.size()));
    }
    return {};
}

std::map<std::string, long long> stats_counters(Harness &h, const std::string &path)
{
    const std::string stats = h.host().control("stats");
    const std::string key = "file=\"" + path + "\" ";
    const auto at = stats.find(key);
    if (at == std::string::npos)
        return {};
    return parse_counters(stats.substr(at + key.size(), stats.find('\n', at) - at - key.size()));
}

void check_accounting(const std::map<std::string, long long> &c, long long calls)
{
    INFO("accepted " << c.at("accepted") << ", written " << c.at("written") << ", dropped_overflow "
                     << c.at("dropped_overflow") << ", dropped_write_error " << c.at("dropped_write_error")
                     << ", dropped_internal " << c.at("dropped_internal"));
    CHECK(c.at("accepted") + c.at("dropped_overflow") == calls);
    CHECK(c.at("accepted") == c.at("written") + c.at("dropped_write_error") + c.at("dropped_internal"));
}

SmallFilesystem::SmallFilesystem(const TempDir &parent, const std::string &options)
{
    const std::string dir = parent / "small";
    std::filesystem::create_directory(dir);
    if (::geteuid() == 0) {
        mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, (options + ",mode=0755").c_str()) == 0;
        mount_errno_ = mounted_ ? 0 : errno;
    }
    if (mounted_)
        dir_ = dir;
}

bool SmallFilesystem::usable(std::source_location where) const
{
    if (!mounted_)
        WARN("skipped at " << where.file_name() << ":" << where.line() << ": cannot mount a small tmpfs ("
                           << (::geteuid() != 0 ? std::string("needs root") : std::strerror(mount_errno_)) << ")");
    return mounted_;
}

SmallFilesystem::~SmallFilesystem()
{
    if (mounted_)
        ::umount2(dir_.c_str(), MNT_DETACH);
}

void SmallFilesystem::fill(const std::string &name)
{
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    char block[4096] = {};
    ssize_t n;
    while ((n = ::write(fd, block, sizeof block)) > 0) {
    }
    while ((n = ::write(fd, block, 1)) > 0) {
    }
    CHECK(errno == ENOSPC);
    ::close(fd);
}

Fifo::Fifo(const std::string &path)
{
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(fd_ >= 0);
}

Fifo::~Fifo() { close_reader(); }

std::size_t Fifo::waiting() const
{
    int n = 0;
    return fd_ >= 0 && ::ioctl(fd_, FIONREAD, &n) == 0 ? static_cast<std::size_t>(n) : 0;
}

std::size_t Fifo::capacity() const
{
    const int n = fd_ >= 0 ? ::fcntl(fd_, F_GETPIPE_SZ) : -1;
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void Fifo::drain(std::string &into)
{
    char buf[65536];
    ssize_t n;
    while (fd_ >= 0 && (n = ::read(fd_, buf, sizeof buf)) > 0)
        into.append(buf, static_cast<std::size_t>(n));
}

void Fifo::close_reader()
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

} // namespace testing
