#include "message_id.hpp"

#include <array>
#include <cstring>


namespace mtacore {

bool is_zero(const message_id &id) noexcept
{
    return id.slot == 0 && id.pid == 0 && id.counter == 0;
}

std::size_t write_message_id(const message_id &id, char *out) noexcept
{
    if (is_zero(id))
        return 0;
    // Two hex digits per table lookup: this runs three times per record.
    static constexpr auto pairs = [] {
        std::array<char, 512> t{};
        constexpr char hex[] = "0123456789ABCDEF";
        for (int b = 0; b < 256; ++b) {
            t[static_cast<std::size_t>(2 * b)] = hex[b >> 4];
            t[static_cast<std::size_t>(2 * b + 1)] = hex[b & 15];
        }
        return t;
    }();
    auto byte_at = [&](char *at, unsigned b) { std::memcpy(at, &pairs[2 * (b & 0xFF)], 2); };
    byte_at(out, id.counter >> 8);
    out[2] = '/';
    byte_at(out + 3, id.counter);
    out[5] = '-';
    // Five decimal digits of the pid (mod 100000), two at a time.
    static constexpr auto decimal_pairs = [] {
        std::array<char, 200> t{};
        for (int v = 0; v < 100; ++v) {
            t[static_cast<std::size_t>(2 * v)] = static_cast<char>('0' + v / 10);
            t[static_cast<std::size_t>(2 * v + 1)] = static_cast<char>('0' + v % 10);
        }
        return t;
    }();
    unsigned pid = id.pid % 100000;
    std::memcpy(out + 9, &decimal_pairs[2 * (pid % 100)], 2);
    pid /= 100;
    std::memcpy(out + 7, &decimal_pairs[2 * (pid % 100)], 2);
    out[6] = static_cast<char>('0' + pid / 100);
    out[11] = '-';
    byte_at(out + 12, id.slot >> 24);
    byte_at(out + 14, id.slot >> 16);
    byte_at(out + 16, id.slot >> 8);
    byte_at(out + 18, id.slot);
    return kMessageIdTextLength;
}

std::string format_message_id(const message_id &id)
{
    char buf[kMessageIdTextLength];
    return std::string(buf, write_message_id(id, buf));
}

namespace {

std::optional<unsigned long> parse_digits(std::string_view s, int base) noexcept
{
    unsigned long value = 0;
    for (char c : s) {
        int digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (base == 16 && c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            return std::nullopt;
        value = value * static_cast<unsigned long>(base) + static_cast<unsigned long>(digit);
    }
    return value;
}

} // namespace

std::optional<message_id> parse_message_id(std::string_view text) noexcept
{
    // 0123456789...
    // CC/cc-PPPPP-SSSSSSSS
    if (text.size() != 20 || text[2] != '/' || text[5] != '-' || text[11] != '-')
        return std::nullopt;
    const auto hi = parse_digits(text.substr(0, 2), 16);
    const auto lo = parse_digits(text.substr(3, 2), 16);
    const auto pid = parse_digits(text.substr(6, 5), 10);
    const auto slot = parse_digits(text.substr(12, 8), 16);
    if (!hi || !lo || !pid || !slot || *pid > 0xFFFFu)
        return std::nullopt;
    message_id id{};
    id.counter = static_cast<uint16_t>((*hi << 8) | *lo);
    id.pid = static_cast<uint16_t>(*pid);
    id.slot = static_cast<uint32_t>(*slot);
    return id;
}

} // namespace mtacore
