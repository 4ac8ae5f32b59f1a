#include "smtp_reply.hpp"

#include <algorithm>
#include <cstddef>

namespace mtalog {

namespace {

// The reply sits near the start of any note seen in practice; a long DSN's
// tail is not searched (and a hostile one costs at most this much).
constexpr std::size_t kSearched = 1024;

bool digit(char c) noexcept
{
    return c >= '0' && c <= '9';
}

bool blank(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// What may come before a code or status: nothing, a blank or punctuation
// (not a digit, a letter or a dot: "v5.1.1", "1.5.1.1" and "x550" are not).
bool opens(std::string_view t, std::size_t i) noexcept
{
    if (i == 0)
        return true;
    const char c = t[i - 1];
    return !digit(c) && c != '.' && c != '_' && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
           static_cast<unsigned char>(c) < 0x80;
}

// A reply code at t[i]: 2xx to 5xx, second digit 0 to 5, then the end of the
// text, a blank or '-' (a continued line). 0 when there is none.
std::uint16_t code_at(std::string_view t, std::size_t i) noexcept
{
    if (i + 3 > t.size() || !opens(t, i))
        return 0;
    const char a = t[i], b = t[i + 1], c = t[i + 2];
    if (a < '2' || a > '5' || b < '0' || b > '5' || !digit(c))
        return 0;
    if (i + 3 < t.size() && !blank(t[i + 3]) && t[i + 3] != '-')
        return 0;
    return static_cast<std::uint16_t>((a - '0') * 100 + (b - '0') * 10 + (c - '0'));
}

// One to three digits at t[i]; their value, and i moved past them.
bool number_at(std::string_view t, std::size_t &i, std::uint16_t &value) noexcept
{
    std::size_t n = 0;
    value = 0;
    while (i < t.size() && digit(t[i]) && n < 4) {
        value = static_cast<std::uint16_t>(value * 10 + (t[i] - '0'));
        ++i;
        ++n;
    }
    return n >= 1 && n <= 3;
}

// An enhanced status at t[i] ("5.1.1"), closed by the end, a blank or
// punctuation (a '.' only when no digit follows it: "5.1.1." ends a sentence).
bool status_at(std::string_view t, std::size_t i, SmtpReply &out) noexcept
{
    if (i + 5 > t.size() || !opens(t, i) || (t[i] != '2' && t[i] != '4' && t[i] != '5') || t[i + 1] != '.')
        return false;
    std::size_t j = i + 2;
    std::uint16_t subject = 0, detail = 0;
    if (!number_at(t, j, subject) || j >= t.size() || t[j] != '.')
        return false;
    ++j;
    if (!number_at(t, j, detail))
        return false;
    if (j < t.size()) {
        const char c = t[j];
        const bool more = c == '.' ? j + 1 < t.size() && digit(t[j + 1]) : !opens(t, j + 1);
        if (more)
            return false;
    }
    out.klass = static_cast<std::uint8_t>(t[i] - '0');
    out.subject = subject;
    out.detail = detail;
    return true;
}

std::size_t skip_blanks(std::string_view t, std::size_t i) noexcept
{
    while (i < t.size() && (t[i] == ' ' || t[i] == '\t'))
        ++i;
    return i;
}

// A status right after the code at `at` ("550 5.1.1", "550-5.1.1").
bool status_after_code(std::string_view t, std::size_t at, SmtpReply &out) noexcept
{
    std::size_t j = at + 3;
    if (j < t.size() && (t[j] == ' ' || t[j] == '-'))
        ++j;
    return status_at(t, skip_blanks(t, j), out);
}

bool status_anywhere(std::string_view t, std::size_t from, SmtpReply &out) noexcept
{
    for (std::size_t i = from; i + 5 <= t.size(); ++i)
        if ((t[i] == '2' || t[i] == '4' || t[i] == '5') && t[i + 1] == '.' && status_at(t, i, out))
            return true;
    return false;
}

} // namespace

SmtpReply parse_smtp_reply(std::string_view text) noexcept
{
    const std::string_view t = text.substr(0, std::min(text.size(), kSearched));
    SmtpReply r;
    // 1. A reply that starts the text.
    const std::size_t start = skip_blanks(t, 0);
    if (const std::uint16_t code = code_at(t, start); code != 0) {
        r.code = code;
        if (!status_after_code(t, start, r))
            status_anywhere(t, start + 3, r);
        return r;
    }
    // 2. A code with a status of its class, anywhere.
    for (std::size_t i = 0; i + 3 <= t.size(); ++i) {
        const std::uint16_t code = code_at(t, i);
        SmtpReply found;
        if (code != 0 && status_after_code(t, i, found) && found.klass == code / 100) {
            found.code = code;
            return found;
        }
    }
    // 3. A code after ": ".
    for (std::size_t i = 0; i + 2 < t.size(); ++i)
        if (t[i] == ':' && t[i + 1] == ' ') {
            const std::size_t at = skip_blanks(t, i + 1);
            if (const std::uint16_t code = code_at(t, at); code != 0) {
                r.code = code;
                status_after_code(t, at, r);
                return r;
            }
        }
    // 4. A status alone.
    status_anywhere(t, 0, r);
    return r;
}

} // namespace mtalog
