// Replays hook events from JSON lines (one object per line; see docs/mtacore.md):
// each line becomes one real hook call through the core, in order.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <streambuf>
#include <string>

#include "core.hpp"

namespace mtacore {

struct ReplayStats {
    std::uint64_t lines = 0;
    std::uint64_t attempts = 0;
    std::uint64_t connection_failures = 0;
    std::uint64_t permanent_failures = 0;
    std::uint64_t reopens = 0;
    std::uint64_t bad_lines = 0;
};

// The replay's input: a file descriptor read in 64 KiB pieces, waiting in
// poll() at most 50 ms at a time, so a producer that has gone quiet (a pipe
// kept open, a terminal) cannot keep `stop` (SIGTERM) from ending the
// replay. Once `stop` is set it reports end of input.
class FdInput : public std::streambuf {
public:
    FdInput(int fd, const std::atomic<bool> &stop) : fd_(fd), stop_(stop) {}

protected:
    int_type underflow() override;

private:
    int fd_;
    const std::atomic<bool> &stop_;
    char buffer_[65536] = {};
};

// Called about once a second during a replay: lines read so far, seconds.
using ReplayProgress = std::function<void(std::uint64_t lines, double seconds)>;

// Malformed lines are reported to `errors` as "source:line: reason" and
// skipped. Stops early when `stop` becomes true (a line the stop cut short
// is not replayed).
ReplayStats replay(Core &core, std::istream &in, const std::string &source, const std::atomic<bool> &stop,
                   std::ostream &errors, const ReplayProgress &progress = {});

} // namespace mtacore
