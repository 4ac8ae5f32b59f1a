// Escaping of untrusted text and the mainlog layouts, byte for byte.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string>

#include "core.hpp"
#include "escape.hpp"
#include "mainlog_format.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <random>
#include <vector>

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

    // An attempt or permanent failure for this fixture's message and domain.
    Record message_record(RecordKind kind, timeval now, std::string_view note)
    {
        Record r;
        r.kind = kind;
        r.now = now;
        r.msg = &msg;
        r.dr = &dr;
        r.note = note;
        r.has_note = true;
        return r;
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
    CHECK(escaped("\xc3\xa9\xc2\xa0") == "\xc3\xa9\xc2\xa0"); // e-acute, no-break space: kept
    // Valid, but line breaks to some readers: each byte escaped, as one unit.
    CHECK(escaped("\xe2\x80\xa8") == "\\xe2\\x80\\xa8"); // U+2028
    CHECK(escaped("a\xe2\x80\xa9" "b") == "a\\xe2\\x80\\xa9b"); // U+2029
    CHECK(escaped("\xc2\x85") == "\\xc2\\x85");            // NEL, a C1 control
    CHECK(escaped("\xc2\x80\xc2\x9f") == "\\xc2\\x80\\xc2\\x9f"); // the C1 range's ends
    // A cap inside the twelve bytes of U+2028's escape: none of it is written.
    CHECK(capped("ab\xe2\x80\xa8" "cdefghijklmnopqrstuvwxyz", 22) == "ab" + std::string(kTruncationMarker));
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
    const Record r = f.message_record(RecordKind::permanent_failure, timeval{1700000000, 250000},
                                      "550 5.1.1 <bob@example.com>: User unknown");
    CHECK(f.line(r) == "1700000000@00/00-25004-31B987F3@00/00-25004-31B987F0@0A/0B-25004-31B987F1@P@example.com@"
                       "2048@pool-a@mta2@4@3@999@192.0.2.55@550 5.1.1 <bob@example.com>: User unknown");
}

TEST_CASE("A record: same columns, A in field 5, note last; microsecond time", "[mainlog]")
{
    Fixture f;
    f.ctx.precision = mtacfg::TimePrecision::microseconds;
    const Record r = f.message_record(RecordKind::attempt, timeval{1700000000, 123456}, "250 ok");
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

// ---- json, csv and templates ----

#include "csv_format.hpp"
#include "bounce_rules.hpp"
#include "json_format.hpp"
#include "reason.hpp"
#include "template_format.hpp"

namespace {

std::string render(void (*format)(const Record &, const FormatContext &, Buffer &), const Record &r,
                   const FormatContext &ctx)
{
    Buffer b;
    format(r, ctx, b);
    return fmt::to_string(b);
}

Record attempt_of(Fixture &f, std::string_view note)
{
    return f.message_record(RecordKind::attempt, timeval{1700000000, 250000}, note);
}

std::string template_error(std::string_view text, RecordKind kind)
{
    auto result = CompiledTemplate::compile(text, kind);
    REQUIRE(std::holds_alternative<TemplateError>(result));
    const auto &e = std::get<TemplateError>(result);
    return std::to_string(e.offset) + ": " + e.message;
}

std::string template_line(std::string_view text, const Record &r, const FormatContext &ctx)
{
    auto result = CompiledTemplate::compile(text, r.kind);
    if (auto *e = std::get_if<TemplateError>(&result))
        FAIL("template error at " << e->offset << ": " << e->message);
    Buffer b;
    std::get<CompiledTemplate>(result).format(r, ctx, b);
    return fmt::to_string(b);
}

} // namespace

TEST_CASE("json: every field of an attempt, in table order", "[json]")
{
    Fixture f;
    f.msg.mailfrom_local = "bounces";
    f.msg.mailfrom_domain = "sender.example";
    f.msg.rcptto_local = "bob";
    f.msg.rcptto_domain = "example.com";
    CHECK(render(format_json, attempt_of(f, "250 \"ok\" \\ done"), f.ctx) ==
          R"({"type":"attempt","timestamp":1700000000.250000,"event_time":"2023-11-14T22:13:20.250000Z",)"
          R"("message_id":"00/00-25004-31B987F3","batch_id":"00/00-25004-31B987F0","connection_id":"0A/0B-25004-31B987F1",)"
          R"("mail_from":"bounces@sender.example","rcpt_to":"bob@example.com","domain":"example.com","size":2048,)"
          R"("binding_group":"pool-a","binding":"mta2","binding_slot":2,"stage":4,"stage_name":"rcpt_to","retries":3,)"
          R"("elapsed":999,"remote_ip":"192.0.2.55","note":"250 \"ok\" \\\\ done","reply":{"code":250}})");
}

TEST_CASE("json: absent values are omitted; connection failures nest peer and error", "[json]")
{
    Fixture f;
    Record p;
    p.kind = RecordKind::permanent_failure;
    p.now = timeval{1700000000, 0};
    CHECK(render(format_json, p, f.ctx) ==
          R"({"type":"permanent_failure","timestamp":1700000000.000000,"event_time":"2023-11-14T22:13:20.000000Z"})");
    Record c;
    c.kind = RecordKind::connection_failure;
    c.now = timeval{1700000000, 0};
    c.err = CONN_ERROR_BIND | 0x40000;
    c.binding_slot = 9;
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(25);
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
    c.addr = reinterpret_cast<sockaddr *>(&in6);
    CHECK(render(format_json, c, f.ctx) ==
          R"({"type":"connection_failure","timestamp":1700000000.000000,"event_time":"2023-11-14T22:13:20.000000Z",)"
          R"("binding_slot":9,"peer":{"address":"2001:db8::1","port":25,"family":"ipv6"},)"
          R"("error":{"code":266240,"flags":["CONN_ERROR_BIND","0x40000"]}})");
    c.addr = nullptr;
    c.err = 0;
    CHECK(render(format_json, c, f.ctx) ==
          R"({"type":"connection_failure","timestamp":1700000000.000000,"event_time":"2023-11-14T22:13:20.000000Z",)"
          R"("binding_slot":9,"error":{"code":0}})");
}

TEST_CASE("json: control bytes and U+2028 keep the text layer", "[json]")
{
    Fixture f;
    CHECK(render(format_json, attempt_of(f, "a\r\nb\xe2\x80\xa8" "c\xff"), f.ctx)
              .ends_with(R"("note":"a\\x0d\\x0ab\\xe2\\x80\\xa8c\\xff"})"));
}

TEST_CASE("csv: one header, the same columns for every kind, RFC 4180 quoting", "[csv]")
{
    CHECK(csv_header() == "type,timestamp,event_time,message_id,batch_id,connection_id,mail_from,rcpt_to,domain,"
                          "size,binding_group,binding,binding_slot,stage,stage_name,retries,elapsed,remote_ip,"
                          "peer_address,peer_port,peer_family,peer_host,error_code,error_flags,os_errno,note,reply_code,"
                          "reply_status,bounce_class,bounce_name");
    Fixture f;
    CHECK(render(format_csv, attempt_of(f, "550 \"no\", thanks "), f.ctx) ==
          "attempt,1700000000.250000,2023-11-14T22:13:20.250000Z,00/00-25004-31B987F3,00/00-25004-31B987F0,"
          "0A/0B-25004-31B987F1,,,example.com,2048,pool-a,mta2,2,4,rcpt_to,3,999,192.0.2.55,,,,,,,,"
          "\"550 \"\"no\"\", thanks \",550,,,");
    Record c;
    c.kind = RecordKind::connection_failure;
    c.now = timeval{1700000000, 0};
    c.err = CONN_ERROR_CONNECT | CONN_ACTION_REQUEUE1;
    CHECK(render(format_csv, c, f.ctx) == "connection_failure,1700000000.000000,2023-11-14T22:13:20.000000Z,,,,,,,,"
                                          "default,default,0,,,,,,,,,,8193,CONN_ACTION_REQUEUE1|CONN_ERROR_CONNECT,,,,,,");
}

TEST_CASE("json and csv: a quote, backslash, comma or U+2028 is found at every offset of every length", "[json][csv]")
{
    // The writers scan sixteen bytes at a time, and short values as two
    // overlapping halves: each length from 1 to 40 with the special text at
    // each offset, against what the text must become.
    Fixture f;
    for (const std::string special : {"\"", "\\", ",", "\xe2\x80\xa8", " "}) {
        for (std::size_t n = special.size(); n <= 40; ++n) {
            for (std::size_t at = 0; at + special.size() <= n; ++at) {
                std::string note(n, 'x');
                note.replace(at, special.size(), special);
                INFO("special " << special << " at " << at << " of " << n);
                std::string json_text;
                for (std::size_t i = 0; i < note.size(); ++i) {
                    if (note.compare(i, 3, "\xe2\x80\xa8") == 0) {
                        json_text += "\\\\xe2\\\\x80\\\\xa8"; // the text layer's escapes, each backslash JSON's
                        i += 2;
                    } else if (note[i] == '\\') {
                        json_text += "\\\\\\\\"; // the text layer's \\, then JSON's escape of each
                    } else {
                        json_text += note[i] == '"' ? "\\\"" : std::string(1, note[i]);
                    }
                }
                CHECK(render(format_json, attempt_of(f, note.c_str()), f.ctx).ends_with(",\"note\":\"" + json_text + "\"}"));
                std::string cell = note;
                for (std::size_t q = 0; (q = cell.find('"', q)) != std::string::npos; q += 2)
                    cell.insert(q, 1, '"');
                for (std::size_t q = 0; (q = cell.find('\\', q)) != std::string::npos; q += 2)
                    cell.insert(q, 1, '\\');
                if (const auto u = cell.find("\xe2\x80\xa8"); u != std::string::npos)
                    cell.replace(u, 3, "\\xe2\\x80\\xa8");
                const bool quoted = special != "\xe2\x80\xa8" && special != "\\" &&
                                    (special != " " || at == 0 || at + 1 == n);
                CHECK(render(format_csv, attempt_of(f, note.c_str()), f.ctx).ends_with((quoted ? ",\"" + cell + "\"" : "," + cell) + ",,,,"));
            }
        }
    }
}

TEST_CASE("templates: every message macro", "[template]")
{
    Fixture f;
    f.msg.mailfrom_local = "bounces";
    f.msg.mailfrom_domain = "sender.example";
    f.msg.rcptto_local = "bob";
    f.msg.rcptto_domain = "example.com";
    ec_kv mess{"campaign", "spring\x01"};
    ec_kv conn{"tls", "TLSv1.3"};
    f.msg.vctx_mess = ec_dict{&mess, 1};
    f.msg.vctx_conn = ec_dict{&conn, 1};
    setenv("TZ", "UTC", 1);
    tzset();
    const Record r = attempt_of(f, "250 ok");
    CHECK(template_line("%t|%t{%Y-%m-%d %H:%M:%S}|%us{1}|%us{6}|%i|%BI|%CI|%r|%R|%m|%M|%d|%b|%g|%n|%N|%B|%H|%s|%S|"
                        "%T|%T{3}|%vctx_mess{campaign}|%vctx_conn{tls}|%vctx_mess{missing}|%binding_slot|100%%",
                        r, f.ctx) ==
          "1700000000|2023-11-14 22:13:20|1700000000.2|1700000000.250000|00/00-25004-31B987F3|00/00-25004-31B987F0|"
          "0A/0B-25004-31B987F1|bob|example.com|bounces|sender.example|example.com|mta2|pool-a|250 ok|3|2048|"
          "192.0.2.55|rcpt_to|4|999|999.750|spring\\x01|TLSv1.3||2|100%");
}

TEST_CASE("templates: connection-failure macros and longest-match names", "[template]")
{
    Fixture f;
    Record c;
    c.kind = RecordKind::connection_failure;
    c.now = timeval{1700000000, 0};
    c.dr = &f.dr;
    c.err = CONN_ERROR_SOCKET;
    c.binding_slot = 1;
    sockaddr_in in4{};
    in4.sin_family = AF_INET;
    in4.sin_port = htons(2525);
    inet_pton(AF_INET, "198.51.100.7", &in4.sin_addr);
    c.addr = reinterpret_cast<sockaddr *>(&in4);
    CHECK(template_line("%peer %peer_ip %peer_port %err %err_names %binding_slot %bx %g %d", c, f.ctx) ==
          "198.51.100.7:2525 198.51.100.7 2525 1024 CONN_ERROR_SOCKET 1 mta1x pool-a example.com");
}

TEST_CASE("template errors name the macro and its offset", "[template]")
{
    CHECK(template_error("%t %x", RecordKind::attempt) ==
          "3: unknown macro '%x' (see docs/formats.md; write %% for a literal %)");
    CHECK(template_error("100%", RecordKind::attempt) ==
          "3: unknown macro '%' (see docs/formats.md; write %% for a literal %)");
    CHECK(template_error("%t %n", RecordKind::connection_failure) ==
          "3: macro '%n' means nothing for connection_failure records");
    CHECK(template_error("%err", RecordKind::permanent_failure) ==
          "0: macro '%err' means nothing for permanent_failure records");
    CHECK(template_error("a %vctx_mess{key", RecordKind::attempt) == "12: unclosed '{' after '%vctx_mess'");
    CHECK(template_error("%vctx_conn", RecordKind::attempt) ==
          "0: macro '%vctx_conn' needs an argument in braces, e.g. %vctx_conn{key}");
    CHECK(template_error("%us", RecordKind::attempt) == "0: macro '%us' needs an argument in braces, e.g. %us{3}");
    CHECK(template_error("%us{7}", RecordKind::attempt) == "4: '%us{7}' needs a number of decimals from 1 to 6");
    CHECK(template_error("%t\n%i", RecordKind::attempt) ==
          "2: control character \\x0A in the template: a record is one line of text");
    CHECK(template_error(std::string_view("a\x7f", 2), RecordKind::attempt) ==
          "1: control character \\x7F in the template: a record is one line of text");
    CHECK(template_error("a\xff", RecordKind::attempt) == "1: invalid UTF-8 in the template: a record is valid UTF-8");
    CHECK(template_error("%t \xc2\x85", RecordKind::attempt) ==
          "3: a C1 control or U+2028/U+2029 in the template: some readers break lines there, and a record is one line");
    CHECK(template_error("\xe2\x80\xa8", RecordKind::attempt).starts_with("0: a C1 control or U+2028/U+2029"));
    CHECK(std::holds_alternative<CompiledTemplate>( // é and an arrow are text
        CompiledTemplate::compile("caf\xc3\xa9 %t \xe2\x86\x92 %i", RecordKind::attempt)));
    CHECK(template_error("%T{x}", RecordKind::attempt) == "3: '%T{x}' needs a number of decimals from 0 to 6");
    CHECK(template_error("%t{}", RecordKind::attempt) == "2: empty argument for '%t'");
}

TEST_CASE("a template compiles to items once; literal runs are merged", "[template]")
{
    auto t = CompiledTemplate::compile("at %t: %i (%n) 100%%", RecordKind::attempt);
    REQUIRE(std::holds_alternative<CompiledTemplate>(t));
    // Each macro with the literal before it: "at " %t, ": " %i, " (" %n, and the trailing ") 100%".
    CHECK(std::get<CompiledTemplate>(t).item_count() == 4);

    // Literals of every length around the 16 bytes kept padded, empty ones, and a trailing one.
    Fixture f;
    const Record r = attempt_of(f, "ok");
    for (const std::string lit : {"", "@", "0123456789abcde", "0123456789abcdef", "0123456789abcdefg",
                                  "a literal much longer than sixteen bytes"}) {
        INFO("literal '" << lit << "'");
        CHECK(template_line(lit + "%N" + lit + "%N%N" + lit, r, f.ctx) == lit + "3" + lit + "33" + lit);
    }
    // %t is the whole second, also before 1970 and through the thread's cache.
    FormatCache cache;
    for (const timeval now : {timeval{-5, 500000}, timeval{-5, 0}, timeval{1700000000, 999999}, timeval{1700000000, 1}}) {
        Record at = r;
        at.now = now;
        at.cache = &cache;
        CHECK(template_line("%t", at, f.ctx) == std::to_string(now.tv_sec));
    }
}

TEST_CASE("event_time agrees with gmtime(3) across centuries, leap days and negative times", "[json]")
{
    std::mt19937_64 rng(7);
    std::vector<long long> times{0, -1, 951782400 /* 2000-02-29 */, 4107542399 /* 2100-02-28T23:59:59 */,
                                 -2208988800 /* 1900-01-01 */, 253402300799 /* 9999-12-31T23:59:59 */};
    SecondText cache; // one thread's, across all the times below
    for (int i = 0; i < 20000; ++i)
        times.push_back(static_cast<long long>(rng() % 253402300800ull) - 62135596800LL / 2);
    for (long long t : times) {
        Buffer mine;
        append_rfc3339(mine, timeval{static_cast<time_t>(t), 123456});
        std::tm tm{};
        const std::time_t tt = static_cast<std::time_t>(t);
        gmtime_r(&tt, &tm);
        char expected[64];
        std::snprintf(expected, sizeof expected, "%04d-%02d-%02dT%02d:%02d:%02d.123456Z", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        INFO("t = " << t);
        REQUIRE(fmt::to_string(mine) == expected);
        // With a thread's cache: the first call of a second fills it, the
        // next reuses it (other microseconds), a new second replaces it.
        for (const long usec : {123456L, 999999L, 0L}) {
            Buffer cached;
            append_rfc3339(cached, timeval{static_cast<time_t>(t), usec}, &cache);
            std::string want = expected;
            want.replace(20, 6, fmt::format("{:06d}", usec));
            REQUIRE(fmt::to_string(cached) == want);
        }
    }
}

TEST_CASE("escaping agrees with a byte-at-a-time reference for every byte value at every offset", "[escape]")
{
    // Reference: the documented rules, one byte at a time (valid multi-byte
    // UTF-8 cannot occur here: one odd byte among ASCII letters).
    auto reference = [](std::string_view text, char sep) {
        std::string out;
        for (unsigned char c : text) {
            if (c == '\\')
                out += "\\\\";
            else if (c < 0x20 || c == 0x7F || c >= 0x80 || (sep != 0 && c == static_cast<unsigned char>(sep)))
                out += fmt::format("\\x{:02x}", c);
            else
                out += static_cast<char>(c);
        }
        return out;
    };
    for (char sep : {'\0', '@'}) {
        for (int value = 1; value < 256; ++value) {
            for (std::size_t at = 0; at < 17; ++at) {
                std::string text(17, 'a');
                text[at] = static_cast<char>(value);
                INFO("byte " << value << " at " << at << " separator " << int(sep));
                REQUIRE(escaped(text, sep) == reference(text, sep));
            }
        }
    }
}

TEST_CASE("holds_any agrees with a byte loop at every length up to 70, for random and planted bytes", "[escape]")
{
    std::mt19937 rng(11);
    for (std::size_t n = 0; n <= 70; ++n) {
        for (int round = 0; round < 200; ++round) {
            std::string text(n, 'x');
            for (auto &c : text) // mostly plain ASCII, sometimes a byte >= 0x80
                c = rng() % 8 == 0 ? static_cast<char>(0x80 + rng() % 128) : static_cast<char>('a' + rng() % 26);
            if (n > 0 && round % 2 == 0)
                text[rng() % n] = round % 4 == 0 ? ',' : '"';
            for (const bool high : {false, true}) {
                bool expected = false;
                for (const char c : text)
                    expected = expected || c == ',' || c == '"' || (high && static_cast<unsigned char>(c) >= 0x80);
                INFO("length " << n << ", round " << round << ", high " << high);
                REQUIRE(detail::holds_any(text, ',', '"', high) == expected);
            }
        }
    }
}

TEST_CASE("escape: the vector scanner finds the same first special byte as the portable one and a byte loop",
          "[format]")
{
    auto reference = [](std::string_view text, char separator, char separator2 = 0) {
        std::size_t i = 0;
        for (; i < text.size(); ++i) {
            const auto c = static_cast<unsigned char>(text[i]);
            if (c < 0x20 || c >= 0x7F || c == '\\' || (separator != 0 && c == static_cast<unsigned char>(separator)) ||
                (separator2 != 0 && c == static_cast<unsigned char>(separator2)))
                break;
        }
        return i;
    };
    std::mt19937 rng(20261122);
    const std::string specials = std::string("\x01\x1f\x7f\x80\xff\\@,\"", 9) + std::string(1, '\0');
    std::size_t checked = 0;
    for (std::size_t length = 0; length <= 80; ++length) {
        for (int round = 0; round < 200; ++round) {
            std::string text(length, 'a');
            for (char &c : text)
                c = static_cast<char>(0x20 + rng() % 0x5F); // printable ASCII
            if (length > 0 && rng() % 4 != 0) // one special byte at a random place, or none
                text[rng() % length] = specials[rng() % specials.size()];
            for (char separator : {'\0', '@', ','}) {
                const std::size_t want = reference(text, separator);
                INFO("length " << length << " separator " << int(separator));
                REQUIRE(mtalog::detail::plain_prefix(text, separator) == want);
                REQUIRE(mtalog::detail::plain_prefix_portable(text, separator) == want);
                ++checked;
            }
            // CSV's pair: a comma and a quote both end the run.
            const std::size_t want = reference(text, ',', '"');
            INFO("length " << length << " separators , and \"");
            REQUIRE(mtalog::detail::plain_prefix(text, ',', '"') == want);
            REQUIRE(mtalog::detail::plain_prefix_portable(text, ',', '"') == want);
            ++checked;
        }
    }
    CHECK(checked == 81u * 200u * 4u);
}

TEST_CASE("numbers and IPv4 peers written by hand match the C library", "[format]")
{
    std::vector<long long> values{0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, -1, -9, -10, -99, -100,
                                  std::numeric_limits<long long>::max(), std::numeric_limits<long long>::min()};
    for (long long p = 1;; p *= 10) { // every power of ten up to 10^18, the last below the maximum
        for (long long d : {-1LL, 0LL, 1LL})
            for (long long sign : {1LL, -1LL})
                values.push_back(sign * (p + d));
        if (p > std::numeric_limits<long long>::max() / 10)
            break;
    }
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i)
        values.push_back(static_cast<long long>(rng()) >> (rng() % 64));
    for (long long v : values) {
        mtalog::Buffer b;
        b.append(std::string_view("x"));
        mtalog::put_int(b, v);
        CHECK(fmt::to_string(b) == "x" + std::to_string(v));
    }
    for (int i = 0; i < 2000; ++i) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(rng()));
        a.sin_addr.s_addr = static_cast<std::uint32_t>(i < 4 ? (i == 0 ? 0u : i == 1 ? 0xFFFFFFFFu : i == 2 ? 0x0A00000Au : 0x64646464u) : rng());
        char want[INET_ADDRSTRLEN];
        REQUIRE(inet_ntop(AF_INET, &a.sin_addr, want, sizeof want) != nullptr);
        const mtalog::Peer p = mtalog::peer_of(reinterpret_cast<const sockaddr *>(&a));
        CHECK(p.known);
        CHECK(std::string(p.ip) == want);
        CHECK(p.port == ntohs(a.sin_port));
        CHECK(std::string(p.family) == "ipv4");
    }
}

TEST_CASE("reply and class: 2xx is no bounce, an attempt never reads a stored DSN, a permanent failure does",
          "[json][csv][template][bounce]")
{
    Fixture f;
    const auto rules = std::get<std::shared_ptr<const mtalog::BounceRules>>(mtalog::BounceRules::compile(
        {{std::string(mtalog::kDefaultBounceRules), std::string(mtalog::kDefaultBounceRulesName)}}));
    mtalog::BounceCounts counts;
    f.ctx.bounce_rules = rules.get();
    f.ctx.bounce_counts = &counts;
    // A success has its reply but no class, and is not counted.
    CHECK(render(format_json, attempt_of(f, "250 2.0.0 Ok: queued as 4ABC (scanned, no virus found)"), f.ctx)
              .ends_with(R"(,"reply":{"code":250,"status":"2.0.0"}})"));
    CHECK(template_line("%reply_code|%reply_status|%C|%c", attempt_of(f, "250 2.6.0 accepted"), f.ctx) == "250|2.6.0||");
    CHECK(counts.by_kind[0][mtalog::kUndetermined].load() == 0);
    // A template that shows the reply only does not classify (nor count).
    CHECK(template_line("%reply_code %reply_status", attempt_of(f, "550 5.1.1 user unknown"), f.ctx) == "550 5.1.1");
    CHECK(counts.by_kind[0][*mtalog::bounce_class_of_number(10)].load() == 0);
    // The template shows the class once worked out, from the raw (unescaped) text.
    CHECK(template_line("%C %c %reply_code %reply_status",
                        attempt_of(f, "452 4.2.2 The email account that you tried to reach is over quota."), f.ctx) ==
          "22 Mailbox Full 452 4.2.2");
    CHECK(counts.by_kind[0][*mtalog::bounce_class_of_number(22)].load() == 1);
    // A stored DSN: read for a permanent failure without a note, never for an attempt.
    std::string dsn_text = "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown";
    string dsn{static_cast<int>(dsn_text.size()), static_cast<int>(dsn_text.size()), dsn_text.data()};
    Record attempt = attempt_of(f, "");
    attempt.has_note = false;
    ec_message msg = *attempt.msg;
    msg._code = &dsn;
    attempt.msg = &msg;
    CHECK(template_line("[%reply_code][%C]", attempt, f.ctx) == "[][]");
    Record failure = attempt;
    failure.kind = RecordKind::permanent_failure;
    failure.reason.reset();
    CHECK(template_line("[%reply_code][%C]", failure, f.ctx) == "[550][10]");
    CHECK(render(format_csv, failure, f.ctx).ends_with(",,550,5.1.1,10,Invalid Recipient"));
}
