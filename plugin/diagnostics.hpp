// The module's messages to the operator, through the core's paniclog, with
// rate limiting for faults that can repeat on every record.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <mtahooks/ec_hooks.h>

namespace mtalog {

// At most one report per interval; reports how many were held back.
class RateLimit {
public:
    explicit RateLimit(std::chrono::seconds interval = std::chrono::seconds(60)) : interval_(interval) {}
    // True when a report may go out now; *suppressed is set to how many were
    // held back since the last one.
    bool allow(std::uint64_t *suppressed) noexcept;

private:
    std::chrono::seconds interval_;
    std::atomic<std::int64_t> last_ns_{INT64_MIN};
    std::atomic<std::uint64_t> suppressed_{0};
};

class Diagnostics {
public:
    Diagnostics(ec_core *core, std::string label) : core_(core), label_(std::move(label)) {}

    void report(int level, std::string_view message) const noexcept;
    void limited(RateLimit &limit, int level, std::string_view message) const noexcept;
    [[nodiscard]] const std::string &label() const noexcept { return label_; }

private:
    ec_core *core_;
    std::string label_; // e.g. mtalog "main"
};

} // namespace mtalog
