// Synthetic, realistic traffic for the hooks: attempts, connection failures of
// every CONN_* kind (IPv4 and IPv6 peers), and permanent failures through
// ec_log_permanent_failure with ordinary, NULL, long and hostile DSN text.
// Exactly `calls` hook calls are made in total, split over `threads`; every
// call carries a unique message id. `reopens` log_reopen calls are spread
// evenly over the run from the main thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "core.hpp"

namespace mtacore {

struct GenerateOptions {
    std::uint64_t calls = 0;
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

using Progress = std::function<void(std::uint64_t done, std::uint64_t total, double seconds)>;

GenerateStats generate(Core &core, const GenerateOptions &options, const std::atomic<bool> &stop,
                       const Progress &progress);

} // namespace mtacore
