#include "escape.hpp"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mtalog {

// C1 is C2 80 to C2 9F; U+2028/U+2029 are E2 80 A8/A9, which Python's
// splitlines() and editors split on.
bool breaks_lines(std::string_view ch) noexcept
{
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(ch[k]); };
    if (ch.size() == 2)
        return b(0) == 0xC2 && b(1) <= 0x9F;
    return ch.size() == 3 && b(0) == 0xE2 && b(1) == 0x80 && (b(2) == 0xA8 || b(2) == 0xA9);
}

namespace {

bool needs_escape(unsigned char c, char separator) noexcept
{
    return c < 0x20 || c == 0x7F || c == '\\' || c >= 0x80 || (separator != 0 && c == static_cast<unsigned char>(separator));
}

// Writes the escaped form of the unit starting at text[i] into unit[] and
// returns its length and how many input bytes it consumed.
struct Unit {
    char bytes[12];
    std::size_t size;
    std::size_t consumed;
};

Unit next_unit(std::string_view text, std::size_t i, char separator) noexcept
{
    static constexpr char hex[] = "0123456789abcdef";
    const auto c = static_cast<unsigned char>(text[i]);
    Unit u{};
    if (c == '\\') {
        u.bytes[0] = '\\';
        u.bytes[1] = '\\';
        u.size = 2;
        u.consumed = 1;
        return u;
    }
    if (c >= 0x80) {
        const std::size_t n = utf8_sequence_length(text.substr(i));
        if (n > 0 && breaks_lines(text.substr(i, n))) { // every byte escaped, as one unit
            for (std::size_t k = 0; k < n; ++k) {
                const auto b = static_cast<unsigned char>(text[i + k]);
                char *at = u.bytes + 4 * k;
                at[0] = '\\';
                at[1] = 'x';
                at[2] = hex[b >> 4];
                at[3] = hex[b & 0xF];
            }
            u.size = 4 * n;
            u.consumed = n;
            return u;
        }
        if (n > 0) {
            for (std::size_t k = 0; k < n; ++k)
                u.bytes[k] = text[i + k];
            u.size = n;
            u.consumed = n;
            return u;
        }
    }
    if (c >= 0x20 && c != 0x7F && c < 0x80 && !(separator != 0 && c == static_cast<unsigned char>(separator))) {
        u.bytes[0] = static_cast<char>(c);
        u.size = 1;
        u.consumed = 1;
        return u;
    }
    u.bytes[0] = '\\';
    u.bytes[1] = 'x';
    u.bytes[2] = hex[c >> 4];
    u.bytes[3] = hex[c & 0xF];
    u.size = 4;
    u.consumed = 1;
    return u;
}

} // namespace

namespace detail {

// Length of the leading run that needs no escaping. Eight bytes at a time:
// a word goes through when none of its bytes is >= 0x80, < 0x20, DEL, a
// backslash or the separator (each test exact, with the classic "has a byte
// less than n" / "has a zero byte" bit tricks); the first word that may hold
// one is finished byte by byte.
std::size_t plain_prefix_portable(std::string_view text, char separator, char separator2) noexcept
{
    constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    auto has_zero = [&](std::uint64_t v) { return (v - ones) & ~v & highs; };
    const std::uint64_t sep = separator != 0 ? ones * static_cast<unsigned char>(separator) : 0;
    const std::uint64_t sep2 = separator2 != 0 ? ones * static_cast<unsigned char>(separator2) : 0;
    auto special = [&](std::uint64_t x) {
        return (x & highs) | ((x - ones * 0x20) & ~x & highs) | has_zero(x ^ (ones * 0x7F)) |
               has_zero(x ^ (ones * '\\')) | (separator != 0 ? has_zero(x ^ sep) : 0) |
               (separator2 != 0 ? has_zero(x ^ sep2) : 0);
    };
    std::size_t i = 0;
    while (i + 8 <= text.size()) {
        std::uint64_t x;
        std::memcpy(&x, text.data() + i, 8);
        if (special(x) != 0)
            break;
        i += 8;
    }
    if (i + 8 > text.size() && i < text.size()) {
        // The last few bytes as one word, padded with a plain letter.
        std::uint64_t x = ones * 'a';
        const char *tail = text.data() + i;
        switch (text.size() - i) { // fixed sizes, so each copy is inlined
        case 7: std::memcpy(&x, tail, 7); break;
        case 6: std::memcpy(&x, tail, 6); break;
        case 5: std::memcpy(&x, tail, 5); break;
        case 4: std::memcpy(&x, tail, 4); break;
        case 3: std::memcpy(&x, tail, 3); break;
        case 2: std::memcpy(&x, tail, 2); break;
        default: std::memcpy(&x, tail, 1); break;
        }
        if (special(x) == 0)
            return text.size();
    }
    while (i < text.size() && !needs_escape(static_cast<unsigned char>(text[i]), separator) &&
           !(separator2 != 0 && text[i] == separator2))
        ++i;
    return i;
}


#if defined(__SSE2__)
// The same test sixteen bytes at a time (SSE2 is part of x86-64): a signed
// compare against 0x20 catches both the control bytes and every byte >= 0x80;
// the first special byte's index comes straight from the mask. Nothing is
// read outside the text.
namespace {

// With `Two`, `separator2` stops the run too (one more compare per block).
template <bool Two>
std::size_t plain_prefix_sse2(std::string_view text, char separator, [[maybe_unused]] char separator2) noexcept
{
    const std::size_t n = text.size();
    if (n == 0)
        return 0;
    const char *p = text.data();
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7F), backslash = _mm_set1_epi8('\\');
    const __m128i sep = _mm_set1_epi8(separator != 0 ? separator : '\\');
    const __m128i sep2 = _mm_set1_epi8(separator2 != 0 ? separator2 : '\\');
    auto mask_of = [&](__m128i x) {
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(x, space), _mm_cmpeq_epi8(x, del)),
                                   _mm_or_si128(_mm_cmpeq_epi8(x, backslash), _mm_cmpeq_epi8(x, sep)));
        if constexpr (Two)
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(x, sep2));
        return static_cast<unsigned>(_mm_movemask_epi8(hit));
    };
    if (n < 16) {
        // Short text (domains, addresses): its first and last 8 (or 4) bytes,
        // overlapping, in one register; nothing is read past the end.
        unsigned m, half;
        if (n >= 8) {
            std::uint64_t a, b;
            std::memcpy(&a, p, 8);
            std::memcpy(&b, p + n - 8, 8);
            m = mask_of(_mm_set_epi64x(static_cast<long long>(b), static_cast<long long>(a)));
            half = 8;
        } else if (n >= 4) {
            std::uint32_t a, b;
            std::memcpy(&a, p, 4);
            std::memcpy(&b, p + n - 4, 4);
            m = mask_of(_mm_set_epi32(0x61616161, 0x61616161, static_cast<int>(b), static_cast<int>(a))); // 'a': plain
            half = 4;
        } else {
            return plain_prefix_portable(text, separator, Two ? separator2 : 0);
        }
        const unsigned low = m & ((1u << half) - 1), high = (m >> half) & ((1u << half) - 1);
        if (low != 0)
            return static_cast<std::size_t>(__builtin_ctz(low));
        return high != 0 ? n - half + static_cast<std::size_t>(__builtin_ctz(high)) : n;
    }
    auto special = [&](const char *at) { return mask_of(_mm_loadu_si128(reinterpret_cast<const __m128i *>(at))); };
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        if (const unsigned m = special(p + i); m != 0)
            return i + static_cast<std::size_t>(__builtin_ctz(m));
    if (i == n)
        return n;
    // The last sixteen bytes, overlapping what was already found plain.
    const std::size_t last = n - 16;
    const unsigned m = special(p + last) >> (i - last);
    return m != 0 ? i + static_cast<std::size_t>(__builtin_ctz(m)) : n;
}

} // namespace

std::size_t plain_prefix(std::string_view text, char separator) noexcept
{
    return plain_prefix_sse2<false>(text, separator, 0);
}
std::size_t plain_prefix(std::string_view text, char separator, char separator2) noexcept
{
    return plain_prefix_sse2<true>(text, separator, separator2);
}
#else
std::size_t plain_prefix(std::string_view text, char separator) noexcept { return plain_prefix_portable(text, separator); }
std::size_t plain_prefix(std::string_view text, char separator, char separator2) noexcept
{
    return plain_prefix_portable(text, separator, separator2);
}
#endif

} // namespace detail

using detail::plain_prefix;

std::size_t utf8_sequence_length(std::string_view t) noexcept
{
    if (t.empty())
        return 0;
    const auto b0 = static_cast<unsigned char>(t[0]);
    auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
        if (k >= t.size())
            return false;
        const auto b = static_cast<unsigned char>(t[k]);
        return b >= lo && b <= hi;
    };
    if (b0 < 0x80)
        return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF)
        return cont(1) ? 2 : 0;
    if (b0 == 0xE0)
        return cont(1, 0xA0, 0xBF) && cont(2) ? 3 : 0;
    if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF)
        return cont(1) && cont(2) ? 3 : 0;
    if (b0 == 0xED) // no UTF-16 surrogates
        return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
    if (b0 == 0xF0)
        return cont(1, 0x90, 0xBF) && cont(2) && cont(3) ? 4 : 0;
    if (b0 >= 0xF1 && b0 <= 0xF3)
        return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (b0 == 0xF4)
        return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    return 0;
}

std::string_view bounded_field(const char *text) noexcept
{
    return std::string_view(text, ::strnlen(text, 2 * kMaxFieldBytes + 4));
}

void append_field_text(Buffer &out, const char *text, char separator)
{
    if (text == nullptr)
        return;
    // Most fields (domains, addresses) are short and plain: measure, copy,
    // and check the copy; anything else takes the general path.
    constexpr std::size_t kShort = 64;
    static_assert(kShort <= kMaxFieldBytes);
    const std::size_t n = ::strnlen(text, kShort + 1);
    if (n <= kShort) {
        const std::size_t at = out.size();
        append_raw(out, text, n);
        if (detail::plain_prefix(std::string_view(out.data() + at, n), separator) == n)
            return;
        out.resize(at);
    }
    append_escaped_capped(out, bounded_field(text), separator, kMaxFieldBytes);
}
void rewrite_from(Buffer &out, std::size_t start, void (*rewrite)(Buffer &out, std::string_view text))
{
    Buffer value;
    append_raw(value, out.data() + start, out.size() - start);
    out.resize(start);
    rewrite(out, std::string_view(value.data(), value.size()));
}

void append_escaped(Buffer &out, std::string_view text, char separator)
{
    std::size_t i = 0;
    while (i < text.size()) {
        const std::size_t plain = plain_prefix(text.substr(i), separator);
        append_raw(out, text.data() + i, plain);
        i += plain;
        if (i >= text.size())
            break;
        const Unit u = next_unit(text, i, separator);
        out.append(u.bytes, u.bytes + u.size);
        i += u.consumed;
    }
}

void append_escaped_capped(Buffer &out, std::string_view text, char separator, std::size_t cap)
{
    // Fast path: the raw text already fits and needs nothing.
    if (text.size() <= cap && plain_prefix(text, separator) == text.size()) {
        append_raw(out, text.data(), text.size());
        return;
    }
    const std::size_t budget = cap > kTruncationMarker.size() ? cap - kTruncationMarker.size() : 0;
    const std::size_t start = out.size();
    std::size_t i = 0;
    // Output up to `budget` bytes; remember whether the rest would still fit
    // in `cap` (then no marker is needed).
    while (i < text.size()) {
        const Unit u = next_unit(text, i, separator);
        if (out.size() - start + u.size > budget)
            break;
        out.append(u.bytes, u.bytes + u.size);
        i += u.consumed;
    }
    if (i >= text.size())
        return;
    // Would the remainder fit within the full cap without a marker?
    std::size_t rest = 0;
    for (std::size_t j = i; j < text.size() && out.size() - start + rest <= cap;) {
        const Unit u = next_unit(text, j, separator);
        rest += u.size;
        j += u.consumed;
    }
    if (out.size() - start + rest <= cap) {
        while (i < text.size()) {
            const Unit u = next_unit(text, i, separator);
            out.append(u.bytes, u.bytes + u.size);
            i += u.consumed;
        }
        return;
    }
    out.append(kTruncationMarker.data(), kTruncationMarker.data() + kTruncationMarker.size());
}

} // namespace mtalog
