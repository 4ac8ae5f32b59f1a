#include "values.hpp"

#include <limits>

#include "document.hpp"

namespace mtacfg {

namespace {

// Splits "256M" into 256 and "M"; nullopt when there is no leading number or
// it overflows.
std::optional<std::pair<std::uint64_t, std::string_view>> number_and_suffix(std::string_view text) noexcept
{
    std::size_t i = 0;
    std::uint64_t value = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        const auto digit = static_cast<std::uint64_t>(text[i] - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
            return std::nullopt;
        value = value * 10 + digit;
        ++i;
    }
    if (i == 0)
        return std::nullopt;
    return std::pair{value, text.substr(i)};
}

std::optional<std::uint64_t> scaled(std::uint64_t value, std::uint64_t factor) noexcept
{
    if (factor != 0 && value > std::numeric_limits<std::uint64_t>::max() / factor)
        return std::nullopt;
    return value * factor;
}

} // namespace

std::optional<bool> parse_bool(std::string_view text) noexcept
{
    for (auto yes : {"on", "true", "yes", "1"})
        if (iequals(text, yes))
            return true;
    for (auto no : {"off", "false", "no", "0"})
        if (iequals(text, no))
            return false;
    return std::nullopt;
}

std::optional<std::uint64_t> parse_count(std::string_view text) noexcept
{
    const auto parts = number_and_suffix(text);
    if (!parts || !parts->second.empty())
        return std::nullopt;
    return parts->first;
}

std::optional<std::uint64_t> parse_size(std::string_view text) noexcept
{
    const auto parts = number_and_suffix(text);
    if (!parts)
        return std::nullopt;
    auto suffix = parts->second;
    if (suffix.size() == 2 && (suffix[1] == 'b' || suffix[1] == 'B'))
        suffix = suffix.substr(0, 1);
    if (suffix.empty() || iequals(suffix, "b"))
        return parts->first;
    if (iequals(suffix, "k"))
        return scaled(parts->first, 1ull << 10);
    if (iequals(suffix, "m"))
        return scaled(parts->first, 1ull << 20);
    if (iequals(suffix, "g"))
        return scaled(parts->first, 1ull << 30);
    return std::nullopt;
}

std::optional<std::chrono::microseconds> parse_duration(std::string_view text) noexcept
{
    const auto parts = number_and_suffix(text);
    if (!parts)
        return std::nullopt;
    struct Unit {
        std::string_view name;
        std::uint64_t micros;
    };
    static constexpr Unit units[] = {{"us", 1},           {"ms", 1000},          {"s", 1000000},
                                     {"m", 60000000},     {"h", 3600000000ull}, {"d", 86400000000ull}};
    for (const auto &unit : units) {
        if (iequals(parts->second, unit.name)) {
            const auto micros = scaled(parts->first, unit.micros);
            if (!micros || *micros > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return std::nullopt;
            return std::chrono::microseconds(static_cast<std::int64_t>(*micros));
        }
    }
    return std::nullopt;
}

std::optional<unsigned> parse_mode(std::string_view text) noexcept
{
    if (text.empty() || text.size() > 4)
        return std::nullopt;
    unsigned mode = 0;
    for (char c : text) {
        if (c < '0' || c > '7')
            return std::nullopt;
        mode = mode * 8 + static_cast<unsigned>(c - '0');
    }
    if (mode > 0777)
        return std::nullopt;
    return mode;
}

} // namespace mtacfg
