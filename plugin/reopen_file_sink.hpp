// A spdlog sink that owns its fd and can reopen it (spdlog's own file sinks
// cannot). Records are buffered whole and written with as few write(2) calls
// as possible; a flush or a full buffer writes them out.
//
// A reopen travels through the async queue like a record (a message at
// kReopenLevel, which records never use), so it happens in queue order:
// every record accepted before it goes to the old file, every record after it
// to the new one. It runs under the same mutex as writing: what was buffered
// goes to the old file, the new file is opened before the old one is closed,
// and if the new one cannot be opened the old one stays in use, so no record
// is lost or split.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
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

    // `header` (may be empty) is written as the first line of every file this
    // sink opens that is new or empty, after a reopen too.
    ReopenFileSink(std::string path, unsigned mode, std::string header, FileCounters &counters,
                   const Diagnostics &diag);
    ~ReopenFileSink() override;

    // Opens the file (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC; a created file gets
    // exactly `mode`). Returns an error text on failure.
    std::optional<std::string> open();

    // The level of the control message that asks for a reopen.
    static constexpr spdlog::level::level_enum kReopenLevel = spdlog::level::critical;

    // Reopens done so far; wait_for_reopen() waits until it passes `seen`.
    [[nodiscard]] std::uint64_t reopens_done() const noexcept { return reopens_done_.load(); }
    bool wait_for_reopen(std::uint64_t seen, std::chrono::milliseconds timeout);

    [[nodiscard]] const std::string &path() const noexcept { return path_; }

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override;
    void flush_() override;

private:
    void write_buffer(); // mutex held
    void reopen();       // mutex held
    void write_header_if_empty(int fd);

    std::string path_;
    unsigned mode_;
    std::string header_;
    FileCounters &counters_;
    const Diagnostics &diag_;
    int fd_ = -1;
    fmt::memory_buffer buffer_;
    std::size_t buffered_records_ = 0;
    std::atomic<std::uint64_t> reopens_done_{0};
    std::mutex reopen_wait_mutex_;
    std::condition_variable reopen_done_cv_;
    RateLimit write_error_limit_;
    RateLimit reopen_error_limit_;
};

// Opens `path` for appending; a file it creates gets exactly `mode` whatever
// the umask. Returns the fd, or -1 with errno set.
int open_log_file(const std::string &path, unsigned mode) noexcept;

} // namespace mtalog
