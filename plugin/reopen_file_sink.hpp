// A spdlog sink that owns its fd and can reopen it (spdlog's own file sinks
// cannot). Records are buffered whole and written with as few write(2) calls
// as possible; a flush or a full buffer writes them out. reopen() runs under
// the same mutex as writing: what was buffered goes to the old file, the new
// file is opened before the old one is closed, and if the new one cannot be
// opened the old one stays in use, so no record is lost or split.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>

#include "counters.hpp"
#include "diagnostics.hpp"

namespace mtalog {

class ReopenFileSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    static constexpr std::size_t kBufferLimit = 64 * 1024;

    ReopenFileSink(std::string path, unsigned mode, FileCounters &counters, const Diagnostics &diag);
    ~ReopenFileSink() override;

    // Opens the file (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC; a created file gets
    // exactly `mode`). Returns an error text on failure.
    std::optional<std::string> open();

    // Writes what is buffered, then switches to a freshly opened file.
    void reopen();

    [[nodiscard]] const std::string &path() const noexcept { return path_; }

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override;
    void flush_() override;

private:
    void write_buffer(); // mutex held

    std::string path_;
    unsigned mode_;
    FileCounters &counters_;
    const Diagnostics &diag_;
    int fd_ = -1;
    fmt::memory_buffer buffer_;
    std::size_t buffered_records_ = 0;
    RateLimit write_error_limit_;
    RateLimit reopen_error_limit_;
};

// Opens `path` for appending; a file it creates gets exactly `mode` whatever
// the umask. Returns the fd, or -1 with errno set.
int open_log_file(const std::string &path, unsigned mode) noexcept;

} // namespace mtalog
