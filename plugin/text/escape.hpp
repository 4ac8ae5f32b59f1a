// Untrusted text (notes, DSNs, addresses) on its way into a log line.
//
// Output is always valid UTF-8 with no control character: bytes below 0x20,
// 0x7F, every byte of an invalid UTF-8 sequence and every byte of a C1
// control (U+0080 to U+009F) or of U+2028/U+2029 (line breaks to some
// readers) become \xHH, a backslash becomes \\, and the field separator of
// the format (if any) becomes \xHH. Other valid multi-byte sequences are
// copied. A fast path copies text that needs
// no escaping in one append.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <fmt/format.h>

namespace mtalog {

using Buffer = fmt::memory_buffer;

inline constexpr std::string_view kTruncationMarker = "...[truncated]";

// Appends n bytes: one size check and one copy, without the chunked loop of
// fmt's generic append (the hot path appends many short pieces per record).
inline void append_raw(Buffer &out, const char *data, std::size_t n)
{
    const std::size_t at = out.size();
    out.resize(at + n);
    std::memcpy(out.data() + at, data, n);
}

// Moves out[start..] aside and writes it again through `rewrite` (a
// format's own escaping or quoting of a value already in the line).
void rewrite_from(Buffer &out, std::size_t start, void (*rewrite)(Buffer &out, std::string_view text));

// Cap on the escaped output of every text field but the note (domains,
// addresses, binding names, context values): a record stays one bounded line.
inline constexpr std::size_t kMaxFieldBytes = 1024;

// A NUL-terminated field read no further than needed to fill kMaxFieldBytes
// (and to know whether it had to be cut): never more than 2 * kMaxFieldBytes + 4.
[[nodiscard]] std::string_view bounded_field(const char *text) noexcept;

// append_escaped_capped(out, bounded_field(text), separator, kMaxFieldBytes);
// nothing for NULL.
void append_field_text(Buffer &out, const char *text, char separator);

// Appends `text` escaped; `separator` (0 for none) is escaped too.
void append_escaped(Buffer &out, std::string_view text, char separator);

// As append_escaped, but the escaped output is capped at `cap` bytes: when
// the text does not fit, output stops at the last whole character or escape
// that fits in cap - marker size, and kTruncationMarker follows. Reads at
// most 2 * cap + 4 bytes of `text`, whatever its size claims.
void append_escaped_capped(Buffer &out, std::string_view text, char separator, std::size_t cap);

namespace detail {
// Length of the leading run of `text` that needs no escaping (no byte below
// 0x20, 0x7F, backslash, byte >= 0x80 or separator). plain_prefix is the
// fastest the target allows (SSE2 on x86-64); the portable one is its
// fallback and the reference it is tested against. `separator2` (0: none)
// also ends the run: a second byte a format treats (CSV's quote).
[[nodiscard]] std::size_t plain_prefix(std::string_view text, char separator) noexcept;
[[nodiscard]] std::size_t plain_prefix(std::string_view text, char separator, char separator2) noexcept;
[[nodiscard]] std::size_t plain_prefix_portable(std::string_view text, char separator, char separator2 = 0) noexcept;

// Whether `text` holds byte `a` or `b`, or (with `high`) a byte >= 0x80:
// sixteen bytes at a time (short text as two overlapping halves). The JSON
// and CSV writers ask it of a value that took the text layer's escapes.
[[nodiscard]] inline bool holds_any(std::string_view text, char a, char b, bool high) noexcept
{
    std::size_t i = 0;
    const std::size_t n = text.size();
    const char *p = text.data();
#if defined(__SSE2__)
    const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b);
    const __m128i top = _mm_set1_epi8(high ? static_cast<char>(0x80) : 0);
    auto hits = [&](__m128i x) {
        return _mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)), _mm_and_si128(x, top)));
    };
    if (n >= 8 && n <= 16) {
        std::uint64_t lo, hi;
        std::memcpy(&lo, p, 8);
        std::memcpy(&hi, p + n - 8, 8);
        return hits(_mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo))) != 0;
    }
    if (n > 16) {
        for (; i + 16 <= n; i += 16)
            if (hits(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p + i))) != 0)
                return true;
        return hits(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p + n - 16))) != 0;
    }
#endif
    for (; i < n; ++i)
        if (p[i] == a || p[i] == b || (high && static_cast<unsigned char>(p[i]) >= 0x80))
            return true;
    return false;
}

} // namespace detail

// Length of the valid UTF-8 sequence starting at text[0], or 0 if invalid.
[[nodiscard]] std::size_t utf8_sequence_length(std::string_view text) noexcept;

// `ch`, one valid UTF-8 sequence, is a character some readers take as a line
// break or control: a C1 control (U+0080 to U+009F, NEL among them) or
// U+2028/U+2029.
[[nodiscard]] bool breaks_lines(std::string_view ch) noexcept;

} // namespace mtalog
