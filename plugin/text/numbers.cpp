#include "numbers.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <ctime>
#include <iterator>

namespace mtalog {

namespace {

constexpr char kPairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                          "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                          "8081828384858687888990919293949596979899";

// Six digits of microseconds, two at a time. Every caller passes
// 0..999,999 (a record's time is normalised where it is built).
void put_micros(char *at, unsigned long u)
{
    std::memcpy(at, kPairs + 2 * (u / 10000), 2);
    std::memcpy(at + 2, kPairs + 2 * (u / 100 % 100), 2);
    std::memcpy(at + 4, kPairs + 2 * (u % 100), 2);
}

} // namespace

void put_int(Buffer &out, long long v)
{
    static constexpr unsigned long long kPow10[] = {1ULL,
                                                    10ULL,
                                                    100ULL,
                                                    1000ULL,
                                                    10000ULL,
                                                    100000ULL,
                                                    1000000ULL,
                                                    10000000ULL,
                                                    100000000ULL,
                                                    1000000000ULL,
                                                    10000000000ULL,
                                                    100000000000ULL,
                                                    1000000000000ULL,
                                                    10000000000000ULL,
                                                    100000000000000ULL,
                                                    1000000000000000ULL,
                                                    10000000000000000ULL,
                                                    100000000000000000ULL,
                                                    1000000000000000000ULL,
                                                    10000000000000000000ULL};
    if (v >= 0 && v < 10) { // stages, retries, slots: most numbers in a record
        out.push_back(static_cast<char>('0' + v));
        return;
    }
    unsigned long long u = v < 0 ? 0ULL - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
    // The number of digits from the bit width (log10(2) ~ 1233 / 4096),
    // corrected by one comparison; then the digits go straight into the line.
    const int bits = 64 - __builtin_clzll(u | 1);
    const int t = (bits * 1233) >> 12;
    const std::size_t digits = static_cast<std::size_t>(t + 1 - (u < kPow10[t] ? 1 : 0));
    const std::size_t at = out.size(), n = digits + (v < 0 ? 1 : 0);
    out.resize(at + n);
    char *p = out.data() + at + n;
    while (u >= 100) { // two digits per step
        p -= 2;
        std::memcpy(p, kPairs + 2 * (u % 100), 2);
        u /= 100;
    }
    if (u >= 10) {
        p -= 2;
        std::memcpy(p, kPairs + 2 * u, 2);
    } else {
        *--p = static_cast<char>('0' + u);
    }
    if (v < 0)
        *--p = '-';
}

void append_seconds(Buffer &out, long long micros, int decimals)
{
    const bool negative = micros < 0;
    // Unsigned, so that even LLONG_MIN has a magnitude.
    const unsigned long long magnitude =
        negative ? 0ULL - static_cast<unsigned long long>(micros) : static_cast<unsigned long long>(micros);
    if (decimals <= 0) {
        // Whole seconds, rounded down (towards minus infinity).
        const auto whole = static_cast<long long>((magnitude + (negative ? 999999 : 0)) / 1000000);
        put_int(out, negative ? -whole : whole);
        return;
    }
    if (negative)
        out.push_back('-');
    put_int(out, static_cast<long long>(magnitude / 1000000));
    out.push_back('.');
    char frac[6];
    put_micros(frac, static_cast<unsigned long>(magnitude % 1000000));
    out.append(frac, frac + std::min(decimals, 6));
}

long long micros_of(long long sec, long long usec) noexcept
{
    long long micros = 0;
    if (__builtin_mul_overflow(sec, 1000000LL, &micros) || __builtin_add_overflow(micros, usec, &micros))
        return sec < 0 ? LLONG_MIN : LLONG_MAX;
    return micros;
}

long long micros_between(long long a_sec, long long a_usec, long long b_sec, long long b_usec) noexcept
{
    long long sec = 0;
    long long usec = 0;
    if (__builtin_sub_overflow(a_sec, b_sec, &sec))
        return a_sec < b_sec ? LLONG_MIN : LLONG_MAX;
    if (__builtin_sub_overflow(a_usec, b_usec, &usec))
        return a_usec < b_usec ? LLONG_MIN : LLONG_MAX;
    return micros_of(sec, usec);
}

void append_time(Buffer &out, const timeval &t, TimeDecimals decimals, SecondText *cache)
{
    long usec = static_cast<long>(t.tv_usec);
    if (usec < 0 || usec > 999999)
        usec = 0;
    if (cache != nullptr && t.tv_sec >= 0) {
        // The whole seconds as last written by this thread, most records.
        const long long second = t.tv_sec;
        if (cache->second != second) {
            const std::size_t at = out.size();
            put_int(out, second);
            cache->second = second;
            cache->len = static_cast<std::uint8_t>(out.size() - at);
            std::memcpy(cache->text, out.data() + at, cache->len);
        } else {
            append_raw(out, cache->text, cache->len);
        }
        if (decimals == TimeDecimals::micro) {
            char frac[7] = {'.'};
            put_micros(frac + 1, static_cast<unsigned long>(usec));
            append_raw(out, frac, 7);
        }
        return;
    }
    append_seconds(out, micros_of(t.tv_sec, usec), decimals == TimeDecimals::micro ? 6 : 0);
}

void append_unix_and_rfc3339(Buffer &out, const timeval &t, std::string_view between, SecondText *unix_cache,
                             SecondText *rfc3339_cache)
{
    constexpr std::size_t kDateTime = 19; // as in append_rfc3339
    if (unix_cache != nullptr && rfc3339_cache != nullptr && t.tv_sec >= 0 && unix_cache->second == t.tv_sec &&
        rfc3339_cache->second == t.tv_sec && t.tv_usec >= 0 && t.tv_usec <= 999999) {
        char micros[6];
        put_micros(micros, static_cast<unsigned long>(t.tv_usec));
        const std::size_t at = out.size(), unix_len = unix_cache->len;
        out.resize(at + unix_len + 7 + between.size() + kDateTime + 8);
        char *p = out.data() + at;
        std::memcpy(p, unix_cache->text, unix_len);
        p += unix_len;
        *p++ = '.';
        std::memcpy(p, micros, 6);
        p += 6;
        std::memcpy(p, between.data(), between.size());
        p += between.size();
        std::memcpy(p, rfc3339_cache->text, kDateTime);
        p += kDateTime;
        *p++ = '.';
        std::memcpy(p, micros, 6);
        p[6] = 'Z';
        return;
    }
    append_time(out, t, TimeDecimals::micro, unix_cache);
    put(out, between);
    append_rfc3339(out, t, rfc3339_cache);
}

namespace {

void put_digits(char *at, long long value, int width)
{
    for (int i = width - 1; i >= 0; --i, value /= 10)
        at[i] = static_cast<char>('0' + value % 10);
}

} // namespace

namespace {

constexpr long long kYear0 = -62167219200LL;         // 0000-01-01T00:00:00Z
constexpr long long kYear9999End = 253402300799LL;  // 9999-12-31T23:59:59Z

// The C library's date for a time outside years 0000 to 9999; all zeros when
// it has none (a year beyond an int).
void outside_four_digit_years(Buffer &out, const timeval &t, long usec)
{
    std::tm tm{};
    const std::time_t s = t.tv_sec;
    if (gmtime_r(&s, &tm) == nullptr) {
        fmt::format_to(std::back_inserter(out), "0000-00-00T00:00:00.{:06d}Z", usec);
        return;
    }
    fmt::format_to(std::back_inserter(out), "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:06d}Z",
                   static_cast<long long>(tm.tm_year) + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, usec);
}

} // namespace

void append_rfc3339(Buffer &out, const timeval &t, SecondText *cache)
{
    long usec = static_cast<long>(t.tv_usec);
    if (usec < 0 || usec > 999999)
        usec = 0;
    constexpr std::size_t kDateTime = 19; // "YYYY-MM-DDTHH:MM:SS", the only text this cache holds
    static_assert(kDateTime <= sizeof SecondText::text);
    if (cache != nullptr && cache->second == t.tv_sec && cache->second >= 0) {
        // The date and time as last written by this thread; then ".uuuuuuZ".
        const std::size_t at = out.size();
        out.resize(at + kDateTime + 8);
        char *text = out.data() + at;
        std::memcpy(text, cache->text, kDateTime);
        text[kDateTime] = '.';
        put_micros(text + kDateTime + 1, static_cast<unsigned long>(usec));
        text[kDateTime + 7] = 'Z';
        return;
    }
    // Days since 1970-01-01 to a proleptic Gregorian date (eras of 400
    // years), without gmtime_r's locking or fmt's parsing.
    const long long secs = t.tv_sec;
    // Years 0000 to 9999 only (RFC 3339's four digits; no overflow below).
    if (secs < kYear0 || secs > kYear9999End) {
        outside_four_digit_years(out, t, usec);
        return;
    }
    long long days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    const long long second_of_day = secs - days * 86400;
    days += 719468; // days from 0000-03-01 to 1970-01-01
    const long long era = (days >= 0 ? days : days - 146096) / 146097;
    const long long day_of_era = days - era * 146097;
    const long long year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const long long day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const long long month_index = (5 * day_of_year + 2) / 153; // March = 0
    const long long day = day_of_year - (153 * month_index + 2) / 5 + 1;
    const long long month = month_index < 10 ? month_index + 3 : month_index - 9;
    const long long year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
    char text[] = "0000-00-00T00:00:00.000000Z";
    put_digits(text, year, 4);
    put_digits(text + 5, month, 2);
    put_digits(text + 8, day, 2);
    put_digits(text + 11, second_of_day / 3600, 2);
    put_digits(text + 14, second_of_day / 60 % 60, 2);
    put_digits(text + 17, second_of_day % 60, 2);
    put_micros(text + 20, static_cast<unsigned long>(usec));
    append_raw(out, text, sizeof text - 1);
    if (cache != nullptr && secs >= 0) {
        cache->second = secs;
        cache->len = kDateTime;
        std::memcpy(cache->text, text, kDateTime);
    }
}

} // namespace mtalog
