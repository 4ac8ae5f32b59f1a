// Every odd thing an MTA may pass a hook, through the real module, with the
// outcome docs/hostile-input.md's table promises. Buffers here are exactly as large as
// stated, so under AddressSanitizer any read past them fails the test.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <climits>
#include <cstring>
#include <ctime>
#include <memory>
#include <netinet/in.h>
#include <sys/un.h>

#include "test_support.hpp"

namespace {

struct Run {
    testing::TempDir dir;
    testing::Harness h;
    Run()
        : h(dir, "mainlog = \"" + dir / "m.jsonl" + "\"\nattempt_format = json\nconnection_failure_format = json\n"
                 "permanent_failure_format = json\nmax_note_bytes = 64")
    {
        REQUIRE(h.error().empty());
    }
    // Stops the module and returns the one line this run wrote.
    std::string line()
    {
        h.stop();
        const auto lines = testing::read_lines(dir / "m.jsonl");
        REQUIRE(lines.size() == 1);
        return lines[0];
    }
};

const std::string kT = R"({"type":"attempt","timestamp":1700000000.000000,"event_time":"2023-11-14T22:13:20.000000Z")";
// What JSON adds after a note that holds no reply any rule knows.
const std::string kUndetermined = R"(,"bounce":{"class":1,"name":"Undetermined"})";
timeval at() { return timeval{1700000000, 0}; }

} // namespace

TEST_CASE("hook inputs: NULL message, domain and time", "[hostile]")
{
    {
        Run r;
        timeval now = at();
        r.h.core().log_attempt(nullptr, nullptr, &now, "n", 1);
        CHECK(r.line() == kT + R"(,"note":"n")" + kUndetermined + "}");
    }
    {
        Run r;
        const std::time_t before = std::time(nullptr);
        r.h.core().log_attempt(nullptr, nullptr, nullptr, nullptr, 0);
        const std::string line = r.line();
        const long long t = std::stoll(line.substr(line.find("\"timestamp\":") + 12));
        CHECK(t >= before);
        CHECK(t <= std::time(nullptr));
    }
}

TEST_CASE("hook inputs: notes that are NULL, negative, unterminated or far longer than their buffer", "[hostile]")
{
    timeval now = at();
    {
        Run r;
        r.h.core().log_attempt(nullptr, nullptr, &now, nullptr, 5); // NULL note, any length: no note
        CHECK(r.line() == kT + "}");
    }
    {
        Run r;
        r.h.core().log_attempt(nullptr, nullptr, &now, "abc", -1); // negative length: no note
        CHECK(r.line() == kT + "}");
    }
    {
        Run r;
        const std::unique_ptr<char[]> note(new char[6]{'a', 'b', 'c', 'X', 'Y', 'Z'}); // no NUL anywhere
        r.h.core().log_attempt(nullptr, nullptr, &now, note.get(), 3);
        CHECK(r.line() == kT + R"(,"note":"abc")" + kUndetermined + "}");
    }
    {
        Run r;
        // note_len claims INT_MAX; the buffer holds 3 × max_note_bytes. Only
        // the first 2 × 64 + 4 bytes may be read.
        const std::size_t size = 3 * 64;
        const std::unique_ptr<char[]> note(new char[size]);
        std::memset(note.get(), 'x', size);
        r.h.core().log_attempt(nullptr, nullptr, &now, note.get(), INT_MAX);
        CHECK(r.line() == kT + R"(,"note":")" + std::string(50, 'x') + R"(...[truncated]")" + kUndetermined + "}");
    }
    {
        Run r;
        ec_message msg{};
        char text[] = "stored";
        string code{-1, 0, text}; // a string whose len is negative: no text
        msg._code = &code;
        r.h.core().log_permanent_failure(&msg, nullptr, &now, nullptr);
        CHECK(r.line().ends_with(R"("retries":0})"));
    }
}

TEST_CASE("hook inputs: every address family and unnamed error bits", "[hostile]")
{
    timeval now = at();
    auto c_line = [&](const sockaddr *addr, int err, int slot) {
        Run r;
        r.h.core().log_connection_failure(const_cast<sockaddr *>(addr), err, nullptr, slot, &now);
        return r.line();
    };
    const std::string head =
        R"({"type":"connection_failure","timestamp":1700000000.000000,"event_time":"2023-11-14T22:13:20.000000Z",)";
    CHECK(c_line(nullptr, 0, 0) == head + R"("binding_group":"default","binding":"default","binding_slot":0,"error":{"code":0}})");
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(25);
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &in6.sin6_addr);
    CHECK(c_line(reinterpret_cast<sockaddr *>(&in6), 0, 99) ==
          head + R"("binding_slot":99,"peer":{"address":"::ffff:192.0.2.1","port":25,"family":"ipv6"},"error":{"code":0}})");
    // AF_UNIX: only the family is read (the hook passes no length), so a bare
    // sockaddr is enough and nothing past it is touched.
    const std::unique_ptr<sockaddr> unix_addr(new sockaddr{});
    unix_addr->sa_family = AF_UNIX;
    CHECK(c_line(unix_addr.get(), 0, -7) == head + R"("binding_slot":-7,"peer":{"family":"unix"},"error":{"code":0}})");
    const std::unique_ptr<sockaddr> odd(new sockaddr{});
    odd->sa_family = 250;
    CHECK(c_line(odd.get(), 0x70000 | CONN_ERROR_BIND, 1) ==
          head + R"("binding_slot":1,"peer":{"family":"af250"},"error":{"code":462848,"flags":["CONN_ERROR_BIND","0x70000"]}})");
}

TEST_CASE("hook inputs: empty and malformed addresses, very long and unterminated fields", "[hostile]")
{
    timeval now = at();
    {
        Run r;
        ec_message msg{};
        msg.mailfrom_local = "";
        msg.mailfrom_domain = "";
        msg.rcptto_local = "no-at-sign\"\\";
        msg.rcptto_domain = nullptr;
        r.h.core().log_attempt(&msg, nullptr, &now, nullptr, 0);
        CHECK(r.line() == kT + R"(,"rcpt_to":"no-at-sign\"\\\\","size":0,"binding_group":"default","binding":"default",)"
                               R"("binding_slot":0,"stage":0,"stage_name":"not_connected","retries":0})");
    }
    {
        Run r;
        // A 3,000-byte domain with no NUL in its buffer: read no further than
        // 2 × 1024 + 4 bytes, written as 1,010 bytes and the marker.
        const std::size_t size = 3000;
        const std::unique_ptr<char[]> domain(new char[size]);
        std::memset(domain.get(), 'd', size);
        domain_record dr{domain.get(), 0, 0};
        r.h.core().log_attempt(nullptr, &dr, &now, nullptr, 0);
        CHECK(r.line() == kT + R"(,"domain":")" + std::string(1010, 'd') + R"(...[truncated]"})");
    }
}

// Times are the MTA's own, never the remote side's; absurd ones still give
// one well-formed line, with arithmetic that saturates instead of
// overflowing (UBSan halts the sanitizer build on an overflow).
TEST_CASE("hook inputs: times at the ends of their range", "[hostile]")
{
    const std::vector<std::pair<timeval, timeval>> cases{
        {{LLONG_MAX, 999999}, {LLONG_MIN, 0}}, // now, the message's creation time
        {{LLONG_MIN, 0}, {LLONG_MAX, 999999}},
        {{LLONG_MIN, -999999}, {1, 0}},
    };
    for (const std::string format :
         {"mainlog", "json", "csv", "\"%us{3} %t %t{%Y} %T %T{3} %n\"", "\"%us{6}|%T{6}\""}) {
        INFO(format);
        testing::TempDir dir;
        testing::Harness h(dir, "attempt_logfile = \"" + dir / "m.log" + "\"\nattempt_format = " + format);
        INFO(h.error());
        REQUIRE(h.error().empty());
        for (auto [now, created] : cases) {
            ec_message msg{};
            msg.creation_time = created;
            h.core().log_attempt(&msg, nullptr, &now, "n", 1);
        }
        h.stop();
        auto lines = testing::read_lines(dir / "m.log");
        if (format == "csv")
            lines.erase(lines.begin()); // its header
        CHECK(lines.size() == cases.size());
    }
    // Saturated, not wrapped: the largest time is the largest number.
    testing::TempDir dir;
    testing::Harness h(dir, "attempt_logfile = \"" + dir / "m.log" + "\"\nattempt_format = \"%us{3}|%T{3}\"");
    REQUIRE(h.error().empty());
    timeval now{LLONG_MAX, 999999};
    ec_message msg{};
    msg.creation_time = timeval{LLONG_MIN, 0};
    h.core().log_attempt(&msg, nullptr, &now, nullptr, 0);
    now = timeval{LLONG_MIN, 0};
    msg.creation_time = timeval{1, 0};
    h.core().log_attempt(&msg, nullptr, &now, nullptr, 0);
    h.stop();
    CHECK(testing::read_lines(dir / "m.log") ==
          std::vector<std::string>{"9223372036854.775|9223372036854.775", "-9223372036854.775|-9223372036854.775"});
}
