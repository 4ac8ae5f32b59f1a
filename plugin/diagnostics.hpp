// The module's messages to the operator, through the core's paniclog, with
// rate limiting for faults that can repeat on every record.
#pragma once

#include <atomic>
#include <chrono>
#include <pthread.h>
#include <cstdint>
#include <string>
#include <string_view>

#include <mtahooks/ec_hooks.h>

namespace mtalog {

// Names the calling thread, so that top -H, ps -L and the idle bench tell
// the module's threads from the MTA's. Linux takes at most 15 bytes (a
// longer name is refused, not cut): checked at compile time.
template <std::size_t N>
inline void name_thread(const char (&name)[N]) noexcept
{
    static_assert(N <= 16, "a thread name has at most 15 bytes");
    (void)pthread_setname_np(pthread_self(), name);
}

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

    // Reports at most once per `limit` interval. `make_message` (returning a
    // std::string) runs only when the report goes out, so a fault repeating
    // on every record costs no string building on the hook path.
    template <typename MakeMessage>
    void limited(RateLimit &limit, int level, MakeMessage &&make_message) const noexcept
    {
        std::uint64_t suppressed = 0;
        if (!limit.allow(&suppressed))
            return;
        try {
            report_limited(level, make_message(), suppressed);
        } catch (...) {
        }
    }
    [[nodiscard]] const std::string &label() const noexcept { return label_; }

private:
    void report_limited(int level, std::string message, std::uint64_t suppressed) const noexcept;

    ec_core *core_;
    std::string label_; // e.g. mtalog "main"
};

} // namespace mtalog
