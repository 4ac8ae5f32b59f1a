#include "bounce_classes.hpp"

namespace mtalog {

namespace {

bool same_ignoring_case(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

} // namespace

std::optional<std::uint8_t> bounce_class_of_number(long number) noexcept
{
    for (std::size_t i = 0; i < kBounceClassCount; ++i)
        if (kBounceClasses[i].number == number)
            return static_cast<std::uint8_t>(i);
    return std::nullopt;
}

std::optional<std::uint8_t> bounce_class_of_name(std::string_view name) noexcept
{
    for (std::size_t i = 0; i < kBounceClassCount; ++i)
        if (same_ignoring_case(kBounceClasses[i].name, name))
            return static_cast<std::uint8_t>(i);
    return std::nullopt;
}

} // namespace mtalog
