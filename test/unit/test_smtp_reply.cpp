// The reply code and enhanced status read from failure texts as servers and
// MTAs write them, and from text that holds neither.
#include <catch2/catch.hpp>

#include <string>

#include "smtp_reply.hpp"

using mtalog::parse_smtp_reply;

namespace {

// "550 5.1.1", "550", "5.2.2" or "" for what the text holds.
std::string reply_of(std::string_view text)
{
    const auto r = parse_smtp_reply(text);
    std::string out = r.has_code() ? std::to_string(r.code) : "";
    if (r.has_status())
        out += (out.empty() ? "" : " ") + std::to_string(r.klass) + "." + std::to_string(r.subject) + "." +
               std::to_string(r.detail);
    return out;
}

} // namespace

TEST_CASE("smtp reply: a code and an enhanced status, as receivers answer", "[reply]")
{
    CHECK(reply_of("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown") == "550 5.1.1");
    CHECK(reply_of("550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
                   "550-5.1.1 double-checking the recipient's email address for typos or\n"
                   "550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser") == "550 5.1.1");
    CHECK(reply_of("452 4.2.2 The email account that you tried to reach is over quota.") == "452 4.2.2");
    CHECK(reply_of("  421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred") == "421 4.7.0");
    CHECK(reply_of("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org") ==
          "554 5.7.1");
    CHECK(reply_of("550 5.7.26 This mail is unauthenticated, which poses a security risk") == "550 5.7.26");
    CHECK(reply_of("552 5.3.4 Message size exceeds fixed maximum message size") == "552 5.3.4");
    CHECK(reply_of("550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DM6NAM]") == "550 5.4.1");
}

TEST_CASE("smtp reply: a code alone, and a status found later in the text", "[reply]")
{
    CHECK(reply_of("451 Temporary local problem - please try later") == "451");
    CHECK(reply_of("250 ok") == "250");
    CHECK(reply_of("550") == "550");
    CHECK(reply_of("554 Transaction failed (5.7.1 policy)") == "554 5.7.1");
    CHECK(reply_of("421-mx.example.com Service not available\n421 closing") == "421");
}

TEST_CASE("smtp reply: inside an MTA's own text", "[reply]")
{
    CHECK(reply_of("SMTP error from remote mail server after RCPT TO:<a@example.com>: 550-5.7.1 "
                   "[192.0.2.1] Our system has detected an unusual rate") == "550 5.7.1");
    CHECK(reply_of("host mx.example.net[198.51.100.7] said: 554 5.7.1 <a@example.net>: Relay access denied "
                   "(in reply to RCPT TO command)") == "554 5.7.1");
    CHECK(reply_of("host mx.example.net said: 550 User unknown") == "550");
    CHECK(reply_of("Delivery failed (status 5.2.2, mailbox full)") == "5.2.2");
    CHECK(reply_of("#5.1.1 smtp;550 5.1.1 <x@y>... User unknown") == "550 5.1.1");
}

TEST_CASE("smtp reply: text that holds no reply gives none", "[reply]")
{
    for (const char *text : {"", "   ", "Connection timed out", "No route to host", "600 not a code",
                             "5500 too long", "55 too short", "x550 glued", "version 15.1.10 released",
                             "5.1", "5.1.1234", "a5.1.1", "v2.0.1", "550x", "170 records", "\xff\xfe\x00"}) {
        INFO(text);
        CHECK(reply_of(text).empty());
    }
    CHECK(reply_of("retry in 450 seconds") == ""); // a number in prose is not a code
    CHECK(reply_of("x550 5.1.1 glued") == "5.1.1"); // not a code, but the status stands alone
    CHECK(reply_of("5.1.1.") == "5.1.1");          // a sentence's full stop ends it
    CHECK(reply_of("5.1.1.2") == "");              // an OID is not a status
}

TEST_CASE("smtp reply: only the first KiB of a long text is searched", "[reply]")
{
    CHECK(reply_of(std::string(2000, 'x') + " 5.1.1") == "");
    CHECK(reply_of(std::string(900, 'x') + " 5.1.1") == "5.1.1");
}
