#include "counters.hpp"

namespace mtalog {

std::string FileCounters::render() const
{
    auto field = [](const char *name, const std::atomic<std::uint64_t> &v) {
        return std::string(name) + "=" + std::to_string(v.load(std::memory_order_relaxed));
    };
    return field("accepted", accepted) + " " + field("written", written) + " " +
           field("dropped_write_error", dropped_write_error) + " " + field("dropped_internal", dropped_internal) + " " + field("write_errors", write_errors) + " " +
           field("reopens", reopens) + " " + field("reopen_errors", reopen_errors) + " " + field("bytes", bytes);
}

} // namespace mtalog
