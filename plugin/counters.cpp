#include "counters.hpp"

namespace mtalog {

std::string FileCounters::render() const
{
    std::string out;
#define MTALOG_COUNTER_TEXT(name, meaning)                                                                        \
    out += (out.empty() ? "" : " ") + std::string(#name) + "=" +                                                  \
           std::to_string(name.load(std::memory_order_relaxed));
    MTALOG_FILE_COUNTERS(MTALOG_COUNTER_TEXT)
#undef MTALOG_COUNTER_TEXT
    return out;
}

void FileCounters::add(const FileCounters &other) noexcept
{
#define MTALOG_COUNTER_ADD(name, meaning) name.fetch_add(other.name.load(std::memory_order_relaxed), std::memory_order_relaxed);
    MTALOG_FILE_COUNTERS(MTALOG_COUNTER_ADD)
#undef MTALOG_COUNTER_ADD
}

} // namespace mtalog
