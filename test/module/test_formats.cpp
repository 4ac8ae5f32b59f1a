// Formats through the real module: template errors located in the config
// file, format conflicts within and across instances, CSV headers on new
// and empty files (after a reopen too), and docs/formats.md kept true.
#include <catch2/catch.hpp>

#include <filesystem>

#include "format_examples.hpp"
#include "test_support.hpp"

TEST_CASE("a bad template is a config error at the macro's line and column", "[formats][module]")
{
    testing::TempDir dir;
    testing::Harness h(dir, "  mainlog = \"" + dir / "m.log" + "\"\n"
                            "  connection_failure_format = \"%t %d %n\"\n"
                            "  attempt_format = \"%t %d %n\"\n"
                            "  permanent_failure_format = \"%t %d %n\"");
    // Line 4 is the connection_failure_format line; the value starts at
    // column 32, so %n (offset 6) is at column 38.
    CHECK(h.error() == dir / "mtacore.conf" +
                           ":4:38: connection_failure_format: macro '%n' means nothing for connection_failure records");
    CHECK_FALSE(std::filesystem::exists(dir / "m.log"));
}

TEST_CASE("a template error after escaped quotes and backslashes points at the macro in the source line",
          "[formats][module]")
{
    testing::TempDir dir;
    // The value starts at column 32 and %n is its 8th byte; \" and \\ take
    // two columns in the source but one byte in the value, so three of them
    // put %n at column 32 + 7 + 3 = 42.
    testing::Harness h(dir, "  mainlog = \"" + dir / "m.log" + "\"\n"
                            "  connection_failure_format = \"\\\"%t\\\" \\\\ %n\"\n"
                            "  log_attempts = off\n  log_permanent_failures = off");
    CHECK(h.error() == dir / "mtacore.conf" +
                           ":4:42: connection_failure_format: macro '%n' means nothing for connection_failure records");
}

TEST_CASE("%us writes a microsecond count out of range as zero, like every other time", "[formats][module]")
{
    testing::TempDir dir;
    testing::Harness h(dir, "  mainlog = \"" + dir / "m.log" + "\"\n"
                            "  connection_failure_format = \"%us{6}|%t{%S}|%t\"\n"
                            "  log_attempts = off\n  log_permanent_failures = off");
    REQUIRE(h.error().empty());
    for (const suseconds_t usec : {1500000L, -5L, 999999L}) {
        timeval now{1700000000, usec};
        h.core().log_connection_failure(nullptr, 0, nullptr, 0, &now);
    }
    h.stop();
    CHECK(testing::read_lines(dir / "m.log") ==
          std::vector<std::string>{"1700000000.000000|20|1700000000", "1700000000.000000|20|1700000000",
                                   "1700000000.999999|20|1700000000"});
}

TEST_CASE("bounce classes: in JSON by default, stats and metrics count them; off leaves them out and refuses %C",
          "[formats][module][bounce]")
{
    testing::TempDir dir;
    const std::string note = "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown";
    string dsn{static_cast<int>(note.size()), static_cast<int>(note.size()), const_cast<char *>(note.data())};
    timeval now{1700000000, 0};
    {
        testing::Harness h(dir, "  permanent_failure_logfile = \"" + dir / "p.json" + "\"\n"
                                "  permanent_failure_format = json\n  log_attempts = off\n"
                                "  log_connection_failures = off\n  metrics_file = \"" + dir / "m.prom" + "\"");
        REQUIRE(h.error().empty());
        ec_message msg{};
        msg.id = message_id{0x5F000000u, 1, 1};
        h.core().log_permanent_failure(&msg, nullptr, &now, &dsn);
        h.core().log_permanent_failure(&msg, nullptr, &now, &dsn);
        msg._code = &dsn; // no note: the stored DSN is read
        h.core().log_permanent_failure(&msg, nullptr, &now, nullptr);
        const auto stats = h.host().control("stats");
        CHECK(stats.find("bounces kind=permanent_failure 10=3\n") != std::string::npos);
        h.stop();
        const auto lines = testing::read_lines(dir / "p.json");
        REQUIRE(lines.size() == 3);
        for (const auto &line : lines)
            CHECK(line.ends_with(R"(,"reply":{"code":550,"status":"5.1.1"},"bounce":{"class":10,"name":"Invalid Recipient"}})"));
        CHECK(testing::read_file(dir / "m.prom").find(
                  "mtalog_bounce_records_total{stanza=\"test\",kind=\"permanent_failure\",class=\"10\",name=\"Invalid "
                  "Recipient\"} 3\n") != std::string::npos);
    }
    {
        testing::Harness h(dir, "  permanent_failure_logfile = \"" + dir / "q.json" + "\"\n"
                                "  permanent_failure_format = json\n  log_attempts = off\n"
                                "  log_connection_failures = off\n  bounce_classes = off");
        REQUIRE(h.error().empty());
        h.core().log_permanent_failure(nullptr, nullptr, &now, &dsn);
        h.stop();
        CHECK(testing::read_lines(dir / "q.json") ==
              std::vector<std::string>{R"({"type":"permanent_failure","timestamp":1700000000.000000,"event_time":"2023-11-14T22:13:20.000000Z","note":")" +
                                       note + R"(","reply":{"code":550,"status":"5.1.1"}})"});
    }
    testing::Harness h(dir, "  mainlog = \"" + dir / "t.log" + "\"\n  bounce_classes = off\n"
                            "  permanent_failure_format = \"%i %C\"\n  log_attempts = off\n  log_connection_failures = off");
    CHECK(h.error() == dir / "mtacore.conf" + ":5:34: permanent_failure_format: macro '%C' shows the bounce class, "
                                                 "and bounce_classes = off");
}

TEST_CASE("record kinds sharing a file in different formats are refused, naming both", "[formats][module]")
{
    testing::TempDir dir;
    testing::Harness h(dir, "mainlog = \"" + dir / "m.log" + "\"\nattempt_format = json");
    CHECK(h.error() == dir / "mtacore.conf" + ":3:12: log file \"" + dir / "m.log" +
                           "\" gets connection_failure records in format mainlog but attempt records in format json; "
                           "records sharing a file must share a format");
}

TEST_CASE("csv files get a header when new or empty, also after a reopen, never twice", "[formats][module]")
{
    testing::TempDir dir;
    const std::string path = dir / "c.csv";
    testing::write_file(dir / "existing.csv", "type,timestamp\nold,row\n");
    const std::string header = "type,timestamp,event_time,message_id,batch_id,connection_id,mail_from,rcpt_to,domain,"
                               "size,binding_group,binding,binding_slot,stage,stage_name,retries,elapsed,remote_ip,"
                               "peer_address,peer_port,peer_family,peer_host,error_code,error_flags,os_errno,note,"
                               "reply_code,reply_status,bounce_class,bounce_name";
    {
        testing::Harness h(dir, "connection_failure_logfile = \"" + path + "\"\nconnection_failure_format = csv\n"
                                "attempt_logfile = \"" + dir / "existing.csv" + "\"\nattempt_format = csv");
        REQUIRE(h.error().empty());
        timeval now{1700000000, 0};
        h.core().log_connection_failure(nullptr, 0, nullptr, 0, &now);
        std::filesystem::rename(path, path + ".1");
        h.core().log_reopen();
        h.core().log_connection_failure(nullptr, 0, nullptr, 1, &now);
        h.stop();
    }
    const std::string row0 = "connection_failure,1700000000.000000,2023-11-14T22:13:20.000000Z,,,,,,,,default,default,0,,,,,,,,,,0,,,,,,,";
    const std::string row1 = "connection_failure,1700000000.000000,2023-11-14T22:13:20.000000Z,,,,,,,,,,1,,,,,,,,,,0,,,,,,,";
    CHECK(testing::read_lines(path + ".1") == std::vector<std::string>{header, row0});
    CHECK(testing::read_lines(path) == std::vector<std::string>{header, row1});
    CHECK(testing::read_lines(dir / "existing.csv") == std::vector<std::string>{"type,timestamp", "old,row"});

    // Restarting on the now non-empty file appends without a second header.
    {
        testing::Harness h(dir, "connection_failure_logfile = \"" + path + "\"\nconnection_failure_format = csv");
        REQUIRE(h.error().empty());
        timeval now{1700000000, 0};
        h.core().log_connection_failure(nullptr, 0, nullptr, 0, &now);
    }
    CHECK(testing::read_lines(path) == std::vector<std::string>{header, row1, row0});
}

TEST_CASE("docs/formats.md shows exactly what the formatters write", "[formats][docs]")
{
    const std::string documented = testing::generated_section("docs/formats.md", "generated");
    REQUIRE_FALSE(documented.empty());
    INFO("regenerate with build/test/mtalog-format-docs");
    CHECK(documented == testing::render_format_docs());
}
