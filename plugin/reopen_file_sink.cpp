#include "reopen_file_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mtalog {

int open_log_file(const std::string &path, unsigned mode) noexcept
{
    for (int attempt = 0; attempt < 8; ++attempt) {
        int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0) {
            (void)::fchmod(fd, mode); // the umask must not change the configured mode
            return fd;
        }
        if (errno != EEXIST)
            return -1;
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        // Removed between the two opens: try creating it again.
    }
    return -1;
}

ReopenFileSink::ReopenFileSink(std::string path, unsigned mode, std::string header, FileCounters &counters,
                               const Diagnostics &diag)
    : path_(std::move(path)), mode_(mode), header_(std::move(header)), counters_(counters), diag_(diag)
{
}

ReopenFileSink::~ReopenFileSink()
{
    std::lock_guard lock(mutex_);
    write_buffer();
    if (fd_ >= 0)
        ::close(fd_);
}

std::optional<std::string> ReopenFileSink::open()
{
    std::lock_guard lock(mutex_);
    const int fd = open_log_file(path_, mode_);
    if (fd < 0)
        return "cannot open log file \"" + path_ + "\": " + std::strerror(errno);
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = fd;
    write_header_if_empty(fd_);
    return std::nullopt;
}

void ReopenFileSink::write_header_if_empty(int fd)
{
    struct stat st {};
    if (header_.empty() || ::fstat(fd, &st) != 0 || st.st_size != 0)
        return;
    const std::string line = header_ + "\n";
    if (::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()))
        counters_.bytes.fetch_add(line.size(), std::memory_order_relaxed);
    else
        diag_.limited(write_error_limit_, EC_LOG_ERROR, "cannot write the header line of \"" + path_ + "\"");
}

void ReopenFileSink::reopen()
{
    write_buffer();
    const int fd = open_log_file(path_, mode_);
    if (fd < 0) {
        counters_.reopen_errors.fetch_add(1, std::memory_order_relaxed);
        diag_.limited(reopen_error_limit_, EC_LOG_ERROR,
                      "cannot reopen log file \"" + path_ + "\": " + std::strerror(errno) +
                          "; still writing to the file opened before");
        return;
    }
    write_header_if_empty(fd);
    const int old = fd_;
    fd_ = fd;
    if (old >= 0)
        ::close(old);
    counters_.reopens.fetch_add(1, std::memory_order_relaxed);
}

bool ReopenFileSink::wait_for_reopen(std::uint64_t seen, std::chrono::milliseconds timeout)
{
    std::unique_lock lock(reopen_wait_mutex_);
    return reopen_done_cv_.wait_for(lock, timeout, [&] { return reopens_done_.load() > seen; });
}

void ReopenFileSink::sink_it_(const spdlog::details::log_msg &msg)
{
    if (msg.level == kReopenLevel) {
        reopen();
        {
            std::lock_guard lock(reopen_wait_mutex_);
            reopens_done_.fetch_add(1);
        }
        reopen_done_cv_.notify_all();
        return;
    }
    buffer_.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
    buffer_.push_back('\n');
    ++buffered_records_;
    if (buffer_.size() >= kBufferLimit)
        write_buffer();
}

void ReopenFileSink::flush_() { write_buffer(); }

void ReopenFileSink::write_buffer()
{
    if (buffered_records_ == 0)
        return;
    const char *p = buffer_.data();
    std::size_t left = buffer_.size();
    int error = 0;
    while (left > 0) {
        const ssize_t n = fd_ >= 0 ? ::write(fd_, p, left) : (errno = EBADF, -1);
        if (n > 0) {
            p += n;
            left -= static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            error = n < 0 ? errno : EIO;
            break;
        }
    }
    const std::size_t written_bytes = buffer_.size() - left;
    const auto whole = static_cast<std::size_t>(std::count(buffer_.data(), buffer_.data() + written_bytes, '\n'));
    counters_.written.fetch_add(whole, std::memory_order_relaxed);
    counters_.bytes.fetch_add(written_bytes, std::memory_order_relaxed);
    if (error != 0) {
        const std::size_t lost = buffered_records_ - whole;
        counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
        counters_.dropped_write_error.fetch_add(lost, std::memory_order_relaxed);
        diag_.limited(write_error_limit_, EC_LOG_ERROR,
                      "write to \"" + path_ + "\" failed: " + std::strerror(error) + "; " + std::to_string(lost) +
                          " records dropped");
    }
    buffer_.clear();
    buffered_records_ = 0;
}

} // namespace mtalog
