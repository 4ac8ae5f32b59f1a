// Escaping of untrusted text and the mainlog layouts, byte for byte.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string>

#include "core.hpp"
#include "escape.hpp"
#include "mainlog_format.hpp"

using namespace mtalog;

namespace {

std::string escaped(std::string_view text, char sep = '@')
{
    Buffer b;
    append_escaped(b, text, sep);
    return fmt::to_string(b);
}

std::string capped(std::string_view text, std::size_t cap)
{
    Buffer b;
    append_escaped_capped(b, text, 0, cap);
    return fmt::to_string(b);
}

struct Fixture {
    mtacore::Core core;
    char domain[12] = "example.com";
    domain_record dr{domain, 0, 0};
    char dsn_text[24] = "550 5.1.1 User unknown";
    string dsn{22, 24, dsn_text};
    ec_message msg{};
    FormatContext ctx;

    Fixture()
    {
        core.set_bindings({{"mta1", "pool-a"}, {"mta2", "pool-a"}});
        ctx.core = core.c_api();
        msg.id = message_id{0x31B987F3u, 25004, 0x0000};
        msg.batch_id = message_id{0x31B987F0u, 25004, 0x0000};
        msg.conn_id = message_id{0x31B987F1u, 25004, 0x0A0B};
        msg.creation_time = timeval{1699999000, 500000};
        msg.binding_slot = 2;
        msg.size = 2048;
        msg.num_retries = 3;
        msg.stage = EC_STAGE_RCPT_TO;
        msg.remote_ip = "192.0.2.55";
        msg._code = &dsn;
    }

    std::string line(const Record &r)
    {
        Buffer b;
        format_mainlog(r, ctx, b);
        return fmt::to_string(b);
    }
};

} // namespace

TEST_CASE("plain text is copied unchanged", "[escape]")
{
    CHECK(escaped("550 5.1.1 <user-1.2@example.com>", 0) == "550 5.1.1 <user-1.2@example.com>");
    CHECK(escaped("Grüße, 世界 🙂", 0) == "Grüße, 世界 🙂");
}

TEST_CASE("control bytes, DEL, backslash and the separator are escaped", "[escape]")
{
    CHECK(escaped("a\r\nb") == "a\\x0d\\x0ab");
    CHECK(escaped(std::string("nul\0x", 5)) == "nul\\x00x");
    CHECK(escaped("tab\there\x7f") == "tab\\x09here\\x7f");
    CHECK(escaped("back\\slash") == "back\\\\slash");
    CHECK(escaped("user@example.com") == "user\\x40example.com");
    CHECK(escaped("user@example.com", 0) == "user@example.com");
}

TEST_CASE("every byte of an invalid UTF-8 sequence is escaped, valid ones kept", "[escape]")
{
    CHECK(escaped("\xff") == "\\xff");
    CHECK(escaped("\xc0\x80") == "\\xc0\\x80");         // overlong NUL
    CHECK(escaped("\xed\xa0\x80") == "\\xed\\xa0\\x80"); // UTF-16 surrogate
    CHECK(escaped("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80"); // above U+10FFFF
    CHECK(escaped("ok\xc3") == "ok\\xc3");              // truncated at the end
    CHECK(escaped("\xc3\x28") == "\\xc3(");
    CHECK(escaped("\xe2\x80\xa8") == "\xe2\x80\xa8");    // U+2028 is valid UTF-8
    CHECK(utf8_sequence_length("\xf0\x9f\x99\x82") == 4);
}

TEST_CASE("the note cap never splits a character or an escape and marks the cut", "[escape]")
{
    CHECK(capped("short", 64) == "short");
    const std::string exact(64, 'x');
    CHECK(capped(exact, 64) == exact);
    const std::string over(65, 'x');
    CHECK(capped(over, 64) == std::string(50, 'x') + "...[truncated]");
    std::string accents;
    for (int i = 0; i < 40; ++i)
        accents += "é"; // 2 bytes each
    CHECK(capped(accents, 64) == accents.substr(0, 50) + "...[truncated]");
    std::string controls(40, '\x01'); // 4 output bytes each
    const std::string out = capped(controls, 64);
    CHECK(out.size() == 48 + kTruncationMarker.size());
    CHECK(out.substr(0, 8) == "\\x01\\x01");
    CHECK(out.substr(44, 4) == "\\x01");
}

TEST_CASE("P record: Momentum's 14 columns", "[mainlog]")
{
    Fixture f;
    Record r;
    r.kind = RecordKind::permanent_failure;
    r.now = timeval{1700000000, 250000};
    r.msg = &f.msg;
    r.dr = &f.dr;
    r.note = "550 5.1.1 <bob@example.com>: User unknown";
    r.has_note = true;
    CHECK(f.line(r) == "1700000000@00/00-25004-31B987F3@00/00-25004-31B987F0@0A/0B-25004-31B987F1@P@example.com@"
                       "2048@pool-a@mta2@4@3@999@192.0.2.55@550 5.1.1 <bob@example.com>: User unknown");
}

TEST_CASE("A record: same columns, A in field 5, note last; microsecond time", "[mainlog]")
{
    Fixture f;
    f.ctx.precision = mtacfg::TimePrecision::microseconds;
    Record r;
    r.kind = RecordKind::attempt;
    r.now = timeval{1700000000, 123456};
    r.msg = &f.msg;
    r.dr = &f.dr;
    r.note = "250 ok";
    r.has_note = true;
    CHECK(f.line(r) == "1700000000.123456@00/00-25004-31B987F3@00/00-25004-31B987F0@0A/0B-25004-31B987F1@A@"
                       "example.com@2048@pool-a@mta2@4@3@999@192.0.2.55@250 ok");
}

TEST_CASE("absent message, domain and note leave their fields empty", "[mainlog]")
{
    Fixture f;
    Record r;
    r.kind = RecordKind::permanent_failure;
    r.now = timeval{1700000000, 0};
    CHECK(f.line(r) == "1700000000@@@@P@@@@@@@@@");
    f.msg.batch_id = message_id{};
    f.msg.conn_id = message_id{};
    f.msg.binding_slot = 7; // unknown to the core
    f.msg.remote_ip = nullptr;
    r.msg = &f.msg;
    CHECK(f.line(r) == "1700000000@00/00-25004-31B987F3@@@P@@2048@@@4@3@999@@");
}

TEST_CASE("C record: IPv4, IPv6 and absent peers, flag names in table order", "[mainlog]")
{
    Fixture f;
    Record r;
    r.kind = RecordKind::connection_failure;
    r.now = timeval{1700000000, 0};
    r.dr = &f.dr;
    r.binding_slot = 1;
    r.err = CONN_ERROR_CONNECT | CONN_ACTION_REQUEUE1;
    sockaddr_in in4{};
    in4.sin_family = AF_INET;
    in4.sin_port = htons(25);
    inet_pton(AF_INET, "192.0.2.1", &in4.sin_addr);
    r.addr = reinterpret_cast<sockaddr *>(&in4);
    CHECK(f.line(r) == "1700000000@@@@C@example.com@192.0.2.1:25@pool-a@mta1@1@8193@CONN_ACTION_REQUEUE1|CONN_ERROR_CONNECT");

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(587);
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
    r.addr = reinterpret_cast<sockaddr *>(&in6);
    r.err = CONN_ERROR_CONNECT_TIMEOUT;
    r.binding_slot = 9;
    CHECK(f.line(r) == "1700000000@@@@C@example.com@[2001:db8::1]:587@@@9@32768@CONN_ERROR_CONNECT_TIMEOUT");

    r.addr = nullptr;
    r.err = 0x30000 | CONN_ERROR_BIND;
    r.dr = nullptr;
    r.binding_slot = 0;
    CHECK(f.line(r) == "1700000000@@@@C@@@default@default@0@200704@CONN_ERROR_BIND|0x30000");
}

TEST_CASE("separators in fields before the last are escaped, the note keeps them", "[mainlog]")
{
    Fixture f;
    char evil_domain[] = "ex@mple.com\n";
    domain_record dr{evil_domain, 0, 0};
    f.msg.remote_ip = "1.2.3.4@x";
    Record r;
    r.kind = RecordKind::attempt;
    r.now = timeval{1700000000, 0};
    r.msg = &f.msg;
    r.dr = &dr;
    r.note = "a@b\r\n1700000000@forged";
    r.has_note = true;
    const std::string line = f.line(r);
    CHECK(line == "1700000000@00/00-25004-31B987F3@00/00-25004-31B987F0@0A/0B-25004-31B987F1@A@ex\\x40mple.com\\x0a@"
                  "2048@pool-a@mta2@4@3@999@1.2.3.4\\x40x@a@b\\x0d\\x0a1700000000@forged");
    CHECK(line.find('\n') == std::string::npos);
}
