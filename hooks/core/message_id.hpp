// The reference core's message-id text form: CC/cc-PPPPP-SSSSSSSS
// (counter high and low byte in upper-case hex, pid in five decimal digits,
// slot in eight upper-case hex digits), e.g. 00/00-25004-31B987F3.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <mtahooks/ec_types.h>

namespace mtacore {

[[nodiscard]] bool is_zero(const message_id &id) noexcept;

inline constexpr std::size_t kMessageIdTextLength = 20;

// Writes the text form into out (no NUL) and returns its length: 0 for the
// all-zero id, kMessageIdTextLength otherwise. Allocation-free.
std::size_t write_message_id(const message_id &id, char *out) noexcept;

// Empty for the all-zero id.
[[nodiscard]] std::string format_message_id(const message_id &id);

// Accepts exactly the text form above (so a record shows the id that was
// given, byte for byte); std::nullopt otherwise.
[[nodiscard]] std::optional<message_id> parse_message_id(std::string_view text) noexcept;

} // namespace mtacore
