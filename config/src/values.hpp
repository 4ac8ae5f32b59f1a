// Typed values of config options. Each parser returns std::nullopt for text
// it does not accept; the caller names the option and the expected form.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mtacfg {

// on|off|true|false|yes|no|1|0, case-insensitive.
[[nodiscard]] std::optional<bool> parse_bool(std::string_view text) noexcept;

// A decimal count without sign: 8192.
[[nodiscard]] std::optional<std::uint64_t> parse_count(std::string_view text) noexcept;

// Bytes with an optional binary suffix K, M, G (case-insensitive, optional
// trailing B): 2048, 64K, 256M, 1G.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

// A duration with a unit: 250us, 100ms, 5s, 2m, 1h, 1d.
[[nodiscard]] std::optional<std::chrono::microseconds> parse_duration(std::string_view text) noexcept;

// An octal file mode up to 0777: 0640, 640.
[[nodiscard]] std::optional<unsigned> parse_mode(std::string_view text) noexcept;

} // namespace mtacfg
