// metrics_file: the instance's counters in Prometheus's text format, checked
// by the real `promtool check metrics` (Debian's prometheus package) and
// against the counters themselves; written at start, every
// metrics_interval and at unload, replaced whole; bad settings refused.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <sstream>

#include "file_checks.hpp"
#include "metrics.hpp"

namespace {

// name{labels} -> value, for every sample line of the exposition text.
std::map<std::string, long long> samples(const std::string &text)
{
    std::map<std::string, long long> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#')
            continue;
        const auto space = line.rfind(' ');
        REQUIRE(space != std::string::npos);
        out[line.substr(0, space)] = std::stoll(line.substr(space + 1));
    }
    return out;
}

void promtool_accepts(const std::string &text)
{
    const auto r = testing::run_command({"/usr/bin/promtool", "check", "metrics"}, "", text);
    INFO("promtool check metrics said: " << r.out << r.err);
    CHECK(r.status == 0);
}

std::size_t temporaries_in(const std::string &dir)
{
    std::size_t n = 0;
    for (const auto &entry : std::filesystem::directory_iterator(dir))
        n += entry.path().filename().string().find(".tmp.") != std::string::npos ? 1 : 0;
    return n;
}

} // namespace

TEST_CASE("the exposition text names every counter per file, escapes labels, and passes promtool", "[metrics]")
{
    mtalog::FileCounters a, b;
    a.accepted = 7;
    a.written = 5;
    a.dropped_overflow = 1;
    a.dropped_internal = 1;
    b.bytes = 1234;
    const std::string odd = "/var/log/a \"quoted\" \\ path\nnext";
    const std::string text = mtalog::render_metrics("edge", {{"/var/log/m.log", &a}, {odd, &b}}, 3, 8192);
    promtool_accepts(text);
    const auto s = samples(text);
    CHECK(s.at(R"(mtalog_records_accepted_total{stanza="edge",file="/var/log/m.log"})") == 7);
    CHECK(s.at(R"(mtalog_records_written_total{stanza="edge",file="/var/log/m.log"})") == 5);
    CHECK(s.at(R"(mtalog_records_dropped_total{stanza="edge",file="/var/log/m.log",reason="overflow"})") == 1);
    CHECK(s.at(R"(mtalog_records_dropped_total{stanza="edge",file="/var/log/m.log",reason="write_error"})") == 0);
    CHECK(s.at(R"(mtalog_records_dropped_total{stanza="edge",file="/var/log/m.log",reason="internal"})") == 1);
    CHECK(s.at(R"(mtalog_written_bytes_total{stanza="edge",file="/var/log/a \"quoted\" \\ path\nnext"})") == 1234);
    CHECK(s.at(R"(mtalog_queue_waiting_records{stanza="edge"})") == 3);
    CHECK(s.at(R"(mtalog_queue_capacity_records{stanza="edge"})") == 8192);
    // 17 counters in 15 families (dropped has three reasons), two files, two gauges.
    CHECK(s.size() == 2 * 17 + 2);
    // Each family is declared once, before its samples.
    CHECK(text.find("# TYPE mtalog_records_dropped_total counter") != std::string::npos);
    CHECK(text.find("# TYPE mtalog_records_dropped_total", text.find("# TYPE mtalog_records_dropped_total") + 1) ==
          std::string::npos);
}

TEST_CASE("bounce classes: one series per kind and class, zeros included, and the failed searches; promtool accepts them",
          "[metrics][bounce]")
{
    mtalog::BounceCounts counts;
    counts.by_kind[mtalog::BounceCounts::kind_index(mtacfg::RecordKind::permanent_failure)][1] = 4; // class 10
    counts.by_kind[mtalog::BounceCounts::kind_index(mtacfg::RecordKind::attempt)][16] = 2;         // class 70
    const std::string text = mtalog::render_bounce_metrics("edge \"x\"", counts, 3);
    promtool_accepts(text);
    const auto s = samples(text);
    CHECK(s.size() == 2 * mtalog::kBounceClassCount + 1);
    CHECK(s.at(R"(mtalog_bounce_records_total{stanza="edge \"x\"",kind="permanent_failure",class="10",name="Invalid Recipient"})") == 4);
    CHECK(s.at(R"(mtalog_bounce_records_total{stanza="edge \"x\"",kind="attempt",class="70",name="Transient Failure"})") == 2);
    CHECK(s.at(R"(mtalog_bounce_records_total{stanza="edge \"x\"",kind="attempt",class="30",name="Generic Bounce: No RCPT"})") == 0);
    CHECK(s.at(R"(mtalog_bounce_search_failures_total{stanza="edge \"x\""})") == 3);
    CHECK(mtalog::render_bounce_stats(counts, 0) ==
          "bounces kind=attempt 70=2\nbounces kind=permanent_failure 10=4\n");
    CHECK(mtalog::render_bounce_stats(mtalog::BounceCounts{}, 3) == "bounce_search_failures=3\n");
    CHECK(mtalog::render_bounce_stats(mtalog::BounceCounts{}, 0).empty());
}

TEST_CASE("an instance writes its metrics at start, every interval and at unload, whole and true", "[metrics]")
{
    testing::TempDir dir;
    const std::string log = dir / "m.log", metrics = dir / "mtalog.prom";
    testing::Harness h(dir, "mainlog = \"" + log + "\"\nmetrics_file = \"" + metrics +
                                "\"\nmetrics_interval = 1s\nflush_interval = 10ms");
    REQUIRE(h.error().empty());
    // At start: the file is there, all zeros.
    const auto first = samples(testing::read_file(metrics));
    CHECK(first.at("mtalog_records_written_total{stanza=\"test\",file=\"" + log + "\"}") == 0);

    testing::log_numbered(h, 0, 3000);
    // Within an interval or two the file shows every record written.
    const std::string written_key = "mtalog_records_written_total{stanza=\"test\",file=\"" + log + "\"}";
    CHECK(testing::wait_until(
        [&] {
            const auto s = samples(testing::read_file(metrics));
            return s.count(written_key) && s.at(written_key) == 3000;
        },
        std::chrono::seconds(5)));
    promtool_accepts(testing::read_file(metrics));
    const auto live = samples(testing::read_file(metrics));
    const auto counters = testing::stats_counters(h, log);
    CHECK(live.at("mtalog_records_accepted_total{stanza=\"test\",file=\"" + log + "\"}") == counters.at("accepted"));
    CHECK(live.at("mtalog_written_bytes_total{stanza=\"test\",file=\"" + log + "\"}") == counters.at("bytes"));

    testing::log_numbered(h, 3000, 5); // staged at unload: in the final file
    h.stop();
    const auto last = samples(testing::read_file(metrics));
    const auto closing = testing::closing_counters(h, log);
    CHECK(last.at(written_key) == 3005);
    CHECK(last.at(written_key) == closing.at("written"));
    CHECK(last.at("mtalog_queue_waiting_records{stanza=\"test\"}") == 0);
    CHECK(temporaries_in(dir.path()) == 0);
    CHECK((std::filesystem::status(metrics).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
           std::filesystem::perms::group_read | std::filesystem::perms::others_read)); // 0644: node_exporter reads it
}

TEST_CASE("a metrics_file that cannot be written is refused at load, or reported and retried", "[metrics]")
{
    testing::TempDir dir;
    const std::string log = dir / "m.log";
    SECTION("its directory is missing")
    {
        testing::Harness h(dir, "mainlog = \"" + log + "\"\nmetrics_file = \"" + (dir / "no/such/m.prom") + "\"");
        CHECK_THAT(h.error(), Catch::Contains("metrics_file") && Catch::Contains("does not exist"));
    }
    SECTION("it is the log file")
    {
        testing::Harness h(dir, "mainlog = \"" + log + "\"\nmetrics_file = \"" + log + "\"");
        CHECK_THAT(h.error(), Catch::Contains("is also a log file"));
    }
    SECTION("another instance writes it")
    {
        const std::string metrics = dir / "m.prom";
        testing::Harness h(dir, "mainlog = \"" + log + "\"\nmetrics_file = \"" + metrics + "\"",
                           "mtalog \"second\" {\n  mainlog = \"" + (dir / "n.log") + "\"\n  metrics_file = \"" +
                               metrics + "\"\n}\n");
        CHECK_THAT(h.error(), Catch::Contains("metrics_file \"" + metrics + "\" is already written by"));
    }
    SECTION("its directory goes away after load: reported, records unharmed")
    {
        const std::string sub = dir / "metrics";
        std::filesystem::create_directory(sub);
        testing::Harness h(dir, "mainlog = \"" + log + "\"\nmetrics_file = \"" + sub + "/m.prom\"\nmetrics_interval = 1s");
        REQUIRE(h.error().empty());
        std::filesystem::remove_all(sub);
        testing::log_numbered(h, 0, 10);
        CHECK(testing::wait_until(
            [&] {
                for (const auto &p : h.panics())
                    if (p.find("metrics_file: cannot create") != std::string::npos)
                        return true;
                return false;
            },
            std::chrono::seconds(5)));
        h.stop();
        CHECK(testing::read_lines(log).size() == 10);
    }
}
