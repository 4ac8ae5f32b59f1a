// Synthetic, realistic traffic for the hooks: attempts, connection failures of
// every CONN_* kind (IPv4 and IPv6 peers), and permanent failures through
// ec_log_permanent_failure with ordinary, NULL, long and hostile DSN text.
// The run makes at most `calls` hook calls in total, split over `threads`,
// and ends early when `duration` has passed or `stop` is set; every call
// carries a unique message id. With a `rate` the calls are paced to that many
// a second over all threads. `reopens` log_reopen calls are spread evenly over
// the run from the main thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "core.hpp"

namespace mtacore {

struct GenerateOptions {
    std::optional<std::uint64_t> calls;                // none: no limit on the number of calls
    std::optional<std::chrono::microseconds> duration; // none: no time limit
    double rate = 0;                                   // calls/s over all threads; 0: as fast as they can
    unsigned threads = 1;
    std::uint64_t seed = 1;
    unsigned reopens = 1;
    std::uint32_t bindings = 0; // known binding slots besides 0
};

struct GenerateStats {
    std::uint64_t attempts = 0;
    std::uint64_t connection_failures = 0;
    std::uint64_t permanent_failures = 0;
    std::uint64_t reopens = 0;
    double seconds = 0;
    std::uint64_t max_call_ns = 0;  // slowest single hook call
    std::uint64_t p999_call_ns = 0; // 99.9th percentile (upper bound of its histogram bucket)
    [[nodiscard]] std::uint64_t calls() const { return attempts + connection_failures + permanent_failures; }
};

// `share`: how far through the run, 0 to 1, by whichever of `calls` and
// `duration` ends it first.
using Progress = std::function<void(std::uint64_t done, double share, double seconds)>;

GenerateStats generate(Core &core, const GenerateOptions &options, const std::atomic<bool> &stop,
                       const Progress &progress);

} // namespace mtacore
