// Numbers and times written straight into a line: no sprintf, no locale,
// no allocation beyond the line's own growth.
#pragma once

#include <cstdint>
#include <string_view>
#include <sys/time.h>

#include "escape.hpp"

namespace mtalog {

inline void put(Buffer &out, std::string_view s) { append_raw(out, s.data(), s.size()); }
// A string literal: its length is known to the compiler, so the copy is a
// few fixed-size moves. Only for literals (an array holding shorter text
// would be copied whole).
template <std::size_t N> void put_literal(Buffer &out, const char (&text)[N]) { append_raw(out, text, N - 1); }
void put_int(Buffer &out, long long v);

// Seconds with `decimals` digits after the point (0: whole seconds, rounded down).
void append_seconds(Buffer &out, long long micros, int decimals);

// sec * 1,000,000 + usec, held at LLONG_MIN or LLONG_MAX where it would
// overflow (the MTA's times are its own, but absurd ones are not undefined
// behaviour).
long long micros_of(long long sec, long long usec) noexcept;
// (a_sec, a_usec) - (b_sec, b_usec) in microseconds, saturating the same way.
long long micros_between(long long a_sec, long long a_usec, long long b_sec, long long b_usec) noexcept;

// The text of the last whole second one thread wrote: consecutive records
// mostly share it.
struct SecondText {
    long long second = -1; // -1: none yet
    std::uint8_t len = 0;
    char text[24] = {};
};

enum class TimeDecimals { none, micro };

// Unix seconds, without or with six decimals.
// `cache`: the calling thread's, to reuse the text of the last second.
void append_time(Buffer &out, const timeval &t, TimeDecimals decimals, SecondText *cache = nullptr);
// The Unix time with microseconds, `between`, then the same time in RFC
// 3339 (JSON's and CSV's timestamp and event_time): when both caches hold
// the second, one move for all of it, the microseconds written once.
void append_unix_and_rfc3339(Buffer &out, const timeval &t, std::string_view between, SecondText *unix_cache,
                             SecondText *rfc3339_cache);
// RFC 3339 UTC with microseconds: 2023-11-14T22:13:20.250000Z
// `cache`: the calling thread's, to reuse the date and time of the last second.
void append_rfc3339(Buffer &out, const timeval &t, SecondText *cache = nullptr);

} // namespace mtalog
