// Momentum's bounce classes (also SparkPost's): the numbers and names that
// `%C` / `%c`, the JSON and CSV fields and the per-class counters show.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mtalog {

struct BounceClass {
    std::uint8_t number;
    std::string_view name;
};

inline constexpr std::array<BounceClass, 20> kBounceClasses{{
    {1, "Undetermined"},
    {10, "Invalid Recipient"},
    {20, "Soft Bounce"},
    {21, "DNS Failure"},
    {22, "Mailbox Full"},
    {23, "Too Large"},
    {24, "Timeout"},
    {25, "Admin Failure"},
    {30, "Generic Bounce: No RCPT"},
    {40, "Generic Bounce"},
    {50, "Mail Block"},
    {51, "Spam Block"},
    {52, "Spam Content"},
    {53, "Prohibited Attachment"},
    {54, "Relaying Denied"},
    {60, "Auto-Reply"},
    {70, "Transient Failure"},
    {80, "Subscribe"},
    {90, "Unsubscribe"},
    {100, "Challenge-Response"},
}};
inline constexpr std::size_t kBounceClassCount = kBounceClasses.size();
// The row of class 1, the class of a text no rule matches.
inline constexpr std::uint8_t kUndetermined = 0;

// The row of a class number or of a class name (any case); nullopt when
// there is no such class.
[[nodiscard]] std::optional<std::uint8_t> bounce_class_of_number(long number) noexcept;
[[nodiscard]] std::optional<std::uint8_t> bounce_class_of_name(std::string_view name) noexcept;

} // namespace mtalog
