// Per-file counters. `accepted` is counted on the hook path; the rest by the
// writer. accepted = written + dropped_write_error + dropped_internal +
// (still queued).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace mtalog {

struct FileCounters {
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> written{0};
    std::atomic<std::uint64_t> dropped_write_error{0};
    std::atomic<std::uint64_t> dropped_internal{0}; // out of memory or a spdlog error
    std::atomic<std::uint64_t> write_errors{0};
    std::atomic<std::uint64_t> reopens{0};
    std::atomic<std::uint64_t> reopen_errors{0};
    std::atomic<std::uint64_t> bytes{0};

    // "accepted=1 written=1 ..." on one line.
    [[nodiscard]] std::string render() const;
};

} // namespace mtalog
