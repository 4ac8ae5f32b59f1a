#include "diagnostics.hpp"

namespace mtalog {

bool RateLimit::allow(std::uint64_t *suppressed) noexcept
{
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
    std::int64_t last = last_ns_.load(std::memory_order_relaxed);
    const std::int64_t gap = std::chrono::duration_cast<std::chrono::nanoseconds>(interval_).count();
    if (last != INT64_MIN && now - last < gap) {
        suppressed_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    if (!last_ns_.compare_exchange_strong(last, now)) {
        suppressed_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    *suppressed = suppressed_.exchange(0);
    return true;
}

void Diagnostics::report(int level, std::string_view message) const noexcept
{
    try {
        const std::string text(message);
        core_->paniclog(core_, level, label_.c_str(), text.c_str());
    } catch (...) {
    }
}

void Diagnostics::report_limited(int level, std::string message, std::uint64_t suppressed) const noexcept
{
    try {
        if (suppressed > 0)
            message += " (" + std::to_string(suppressed) + " similar reports suppressed)";
        report(level, message);
    } catch (...) {
    }
}

} // namespace mtalog
