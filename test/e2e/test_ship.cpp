// mtalog-ship against one real nats-server on loopback: its config errors,
// bad input of every kind (servers unreachable at start, refused
// credentials, a stream that does not exist, a state directory it cannot
// use, a corrupt cursor, a file truncated under it), the Exim adapter's
// files written by many processes, and tail.
#include <catch2/catch.hpp>

#include <algorithm>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "file_checks.hpp"
#include "fleet.hpp"
#include "ship_node.hpp"
#include "spool.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using testing::check_exactly_once;
using testing::NodeOnOneServer;
using testing::OneServer;
using testing::ShipNode;

std::string check_config(const std::string &dir, const std::string &text)
{
    testing::write_file(dir + "/bad.conf", text);
    const auto r = testing::run_command({testing::mtalog_ship_exe(), "--check", dir + "/bad.conf"}, dir);
    CHECK(r.status == 1);
    return r.err;
}

} // namespace

TEST_CASE("ship: config errors name file:line:column, and --check validates without connecting", "[ship]")
{
    ShipNode n("nats://127.0.0.1:9"); // nothing listens there: --check must not care
    const auto ok = testing::run_command({testing::mtalog_ship_exe(), "--check", n.ship_conf}, n.dir.path());
    INFO(ok.err);
    CHECK(ok.status == 0);
    CHECK(ok.out.find("ok: node n1: 2 file(s)") != std::string::npos);
    CHECK(ok.out.find("attempt.log (mainlog, attempt)") != std::string::npos);

    const std::string d = n.dir.path();
    CHECK(check_config(d, "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  server = \"nats://x:1\"\n}\n") ==
          "mtalog-ship: " + d + "/bad.conf:3:3: unknown option 'server' in mtalog_ship (did you mean 'servers'?)\n");
    CHECK(check_config(d, "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"http://x\"\n}\n")
              .find("bad.conf:3:14: 'servers' must be server URLs starting nats:// or tls://") != std::string::npos);
    CHECK(check_config(d, "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"nats://a:1\"\n"
                          "  node = \"a.b\"\n}\n")
              .find("bad.conf:4:11: 'node' must be a node name") != std::string::npos);
    CHECK(check_config(d, "mtalog_ship {\n  mtalog_config = \"nope.conf\"\n  servers = \"nats://a:1\"\n}\n")
              .find("bad.conf:2:20: mtalog_config \"" + d + "/nope.conf\": No such file or directory") !=
          std::string::npos);
    CHECK(check_config(d, "mtalog_ship {\n  servers = \"nats://a:1\"\n}\n").find("needs mtalog_config") !=
          std::string::npos);
    // One file named by two stanzas would be shipped twice: refused.
    testing::write_file(d + "/two.conf", "mtalog \"a\" {\n  attempt_logfile = \"x.log\"\n}\n"
                                         "mtalog \"b\" {\n  attempt_logfile = \"./x.log\"\n}\n");
    CHECK(check_config(d, "mtalog_ship {\n  mtalog_config = \"two.conf\"\n  servers = \"nats://a:1\"\n}\n")
              .find("two.conf:5:22: log file \"./x.log\" is named again (first at " + d + "/two.conf:2:22)") !=
          std::string::npos);
    // A secrets file others can read is refused; the secret never goes on the
    // command line.
    testing::write_file(d + "/secret", "user = \"ship\"\npassword = \"pw\"\n");
    ::chmod((d + "/secret").c_str(), 0644);
    CHECK(check_config(d, "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"nats://a:1\"\n"
                          "  credentials_file = \"secret\"\n}\n")
              .find("is readable or writable by others (mode 0644): chmod 600 it") != std::string::npos);
    ::chmod((d + "/secret").c_str(), 0600);
    testing::write_file(d + "/secret", "user = \"ship\"\n");
    CHECK(check_config(d, "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"nats://a:1\"\n"
                          "  credentials_file = \"secret\"\n}\n")
              .find("needs token, or user and password") != std::string::npos);
}

TEST_CASE("ship: servers unreachable at start are retried until they come; then every record goes once", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    testing::TempDir servers;
    const int port = testing::free_port();
    const std::string url = "nats://127.0.0.1:" + std::to_string(port);
    ShipNode n(url);
    n.generate(20000);
    testing::Process shipper({testing::mtalog_ship_exe(), n.ship_conf}, n.dir / "ship.log", n.dir.path());
    REQUIRE(testing::wait_until(
        [&] {
            return testing::read_file(n.dir / "ship.log").find("cannot connect to any of the servers") !=
                   std::string::npos;
        },
        10s));
    testing::write_file(servers / "n.conf", "listen: 127.0.0.1:" + std::to_string(port) +
                                                "\njetstream { store_dir: \"" + servers / "js" + "\" }\n");
    testing::Process server({testing::nats_server_exe(), "-c", servers / "n.conf"}, servers / "n.log");
    const testing::StreamReader reader{url, "", ""};
    CHECK(testing::wait_until([&] { return reader.messages("MTALOG") == n.lines_in_files(); }, 30s));
    CHECK(shipper.stop(SIGTERM) == 0);
    check_exactly_once(reader, n.lines_in_files());
    // The cursor was saved at stop: a second run sends nothing.
    const auto again = n.ship_once();
    INFO(again.err);
    CHECK(again.status == 0);
    CHECK(again.err.find("stopped: 0 records shipped") != std::string::npos);
    check_exactly_once(reader, n.lines_in_files());
}

TEST_CASE("ship: refused credentials, a missing stream and an unusable state_dir are clear errors", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  credentials_file = \"secret\"\n", "ship", "right-password");
    n.generate(5000);
    const std::string secret = n.dir / "secret";
    testing::write_file(secret, "user = \"ship\"\npassword = \"wrong-password\"\n");
    ::chmod(secret.c_str(), 0600);
    auto r = n.ship_once();
    CHECK(r.status == 1);
    CHECK(r.err.find("the servers refused the credentials") != std::string::npos);
    CHECK(r.err.find("wrong-password") == std::string::npos); // never echoed

    testing::write_file(secret, "user = \"ship\"\npassword = \"right-password\"\n");
    n.write_ship_conf(n.url(), "  credentials_file = \"secret\"\n  create_stream = off\n");
    r = n.ship_once();
    CHECK(r.status == 1);
    CHECK(r.err.find("stream \"MTALOG\" does not exist; create it (subjects "
                     "\"mtalog.>\") or set create_stream = on") != std::string::npos);

    n.write_ship_conf(n.url(), "  credentials_file = \"secret\"\n", "core.conf/state");
    r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("state_dir \"core.conf/state\" is not a writable directory") != std::string::npos);

    n.write_ship_conf(n.url(), "  credentials_file = \"secret\"\n");
    r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    check_exactly_once(n.reader(), n.lines_in_files());
}

TEST_CASE("ship: a cursor the first version wrote is carried over: nothing before its offset is sent again",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    n.write_core_conf("attempt.log", "bounce.json");
    n.generate(1000);
    const auto lines = testing::read_lines(n.dir / "attempt.log");
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < 100; ++i)
        offset += lines[i].size() + 1;
    // Version 1 keyed a file by the configured path as written and its first
    // record; attempt.log was shipped to the end of its 100th record, and
    // bounce.json not at all.
    char key[17];
    std::snprintf(key, sizeof key, "%016llx",
                  static_cast<unsigned long long>(mtalog::ship::legacy_key("attempt.log", lines.front())));
    fs::create_directories(n.dir / "state");
    testing::write_file(n.dir / "state/cursor.json",
                        std::string("{\"version\": 1, \"node\": \"n1\", \"scan_from\": 0, \"files\": {\"") + key +
                            "\": {\"path\": \"attempt.log\", \"offset\": " + std::to_string(offset) +
                            ", \"done\": false, \"stored\": []}}}\n");
    const auto r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    const long long expected = n.lines_in_files() - 100;
    CHECK(r.err.find("stopped: " + std::to_string(expected) + " records shipped") != std::string::npos);
    check_exactly_once(n.reader(), expected);
}

TEST_CASE("ship: a corrupt or lost cursor is recovered from the stream without a doubled record", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    const testing::StreamReader reader = n.reader();
    n.generate(10000, 1);
    REQUIRE(n.ship_once().status == 0);
    const long long shipped_first = n.lines_in_files();
    testing::write_file(n.dir / "state/cursor.json", "{\"version\": 1, \"node\": \"n1\", \"scan_fr");
    n.generate(10000, 2);
    auto r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("not a cursor file") != std::string::npos);
    CHECK(r.err.find("read back " + std::to_string(shipped_first) + " message(s) of this node past the cursor") !=
          std::string::npos);
    check_exactly_once(reader, n.lines_in_files());
    fs::remove(n.dir / "state/cursor.json");
    n.generate(5000, 3);
    r = n.ship_once();
    CHECK(r.status == 0);
    check_exactly_once(reader, n.lines_in_files());
}

TEST_CASE("ship: publishes that time out while the server stalls are stored once: the read-back finds what it "
          "stored before anything is sent again",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  ack_wait = 500ms\n  metrics_file = \"ship.prom\"\n");
    const testing::StreamReader reader = n.reader();
    n.generate(200000);
    testing::Process shipper({testing::mtalog_ship_exe(), n.ship_conf}, n.dir / "ship.log", n.dir.path());
    // Mid-publish, the server stops answering for longer than ack_wait (its
    // connections stay open): what it had received but not acknowledged is
    // stored when it goes on, before it answers the shipper's read-back.
    REQUIRE(testing::wait_until([&] { return reader.messages("MTALOG") > 20000; }, 30s));
    REQUIRE(::kill(n.cluster.pid(0), SIGSTOP) == 0);
    std::this_thread::sleep_for(2s);
    REQUIRE(::kill(n.cluster.pid(0), SIGCONT) == 0);
    CHECK(testing::wait_until([&] { return reader.messages("MTALOG") >= n.lines_in_files(); }, 60s));
    CHECK(shipper.stop(SIGTERM) == 0);
    const std::string log = testing::read_file(n.dir / "ship.log");
    INFO(log);
    const auto status = nlohmann::json::parse(testing::read_file(n.dir / "state/status.json"));
    CHECK(status.at("failed_publishes").get<long long>() > 0);
    CHECK(status.at("found_stored").get<long long>() > 0); // stored without an ack, found, not sent again
    check_exactly_once(reader, n.lines_in_files());
    // metrics_file: the same counts, in a form promtool accepts.
    const std::string metrics = testing::read_file(n.dir / "ship.prom");
    struct stat st {};
    REQUIRE(::stat((n.dir / "ship.prom").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644); // node_exporter runs as its own user
    const auto checked = testing::run_command({"/usr/bin/promtool", "check", "metrics"}, "", metrics);
    INFO(metrics << checked.out << checked.err);
    CHECK(checked.status == 0);
    const std::string labels = "{node=\"n1\",stream=\"MTALOG\"} ";
    for (const auto &[name, key] : {std::pair{"mtalog_ship_records_shipped_total", "shipped"},
                                    std::pair{"mtalog_ship_failed_publishes_total", "failed_publishes"},
                                    std::pair{"mtalog_ship_records_found_stored_total", "found_stored"},
                                    std::pair{"mtalog_ship_lag_records", "lag_records"}})
        CHECK(metrics.find(std::string(name) + labels + std::to_string(status.at(key).get<long long>()) + "\n") !=
              std::string::npos);
    // Every record was acknowledged to this shipper or found stored by a
    // round; one acknowledged, lost and sent again was acknowledged twice.
    CHECK(status.at("shipped").get<long long>() + status.at("found_stored").get<long long>() -
              status.at("restored").get<long long>() ==
          n.lines_in_files());
}

TEST_CASE("ship: a record the stream loses after acknowledging it is found missing by a round and sent again",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    // A leader elected with a stale store can give up messages it
    // acknowledged (seen with nats-server 2.9.10 after a full restart);
    // deleting one stands in for that: once before the round that follows
    // the answers, once after it (the late check, a window later, finds it).
    NodeOnOneServer n("  reconcile_interval = 4s\n  reconcile_window = 20s\n");
    const testing::StreamReader reader = n.reader();
    n.generate(2000);
    const long long records = n.lines_in_files();
    testing::Process shipper({testing::mtalog_ship_exe(), n.ship_conf}, n.dir / "ship.log", n.dir.path());
    REQUIRE(testing::wait_until([&] { return reader.messages("MTALOG") >= records; }, 30s));
    auto stored = reader.read_all("MTALOG");
    REQUIRE(stored.size() >= 20);
    const std::string early = stored[9].payload;
    REQUIRE(reader.delete_message("MTALOG", stored[9].seq));
    const auto status = [&] {
        return nlohmann::json::parse(testing::read_file(n.dir / "state/status.json"), nullptr, false);
    };
    // Sent again once the round finds it missing; then verified.
    CHECK(testing::wait_until(
        [&] {
            const auto j = status();
            return j.is_object() && j.value("restored", 0) == 1 && j.value("unverified_records", -1) == 0 &&
                   j.value("lag_records", -1) == 0;
        },
        30s));
    stored = reader.read_all("MTALOG");
    const std::string late = stored[19].payload;
    REQUIRE(reader.delete_message("MTALOG", stored[19].seq));
    CHECK(testing::wait_until([&] { return status().value("restored", 0) == 2; }, 40s));
    CHECK(testing::wait_until([&] { return status().value("lag_records", -1) == 0; }, 30s));
    CHECK(shipper.stop(SIGTERM) == 0);
    const std::string log = testing::read_file(n.dir / "ship.log");
    INFO(log);
    CHECK(log.find("the stream lacks") != std::string::npos);
    const auto j = status();
    CHECK(j.at("shipped").get<long long>() + j.at("found_stored").get<long long>() -
              j.at("restored").get<long long>() ==
          records);
    check_exactly_once(reader, records);
    int back = 0;
    for (const auto &m : reader.read_all("MTALOG"))
        back += m.payload == early || m.payload == late;
    CHECK(back == 2);
}

TEST_CASE("ship: a file truncated under the shipper (copytruncate) is a clear error", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    n.generate(2000);
    testing::Process shipper({testing::mtalog_ship_exe(), n.ship_conf}, n.dir / "ship.log", n.dir.path());
    const testing::StreamReader reader = n.reader();
    REQUIRE(testing::wait_until([&] { return reader.messages("MTALOG") == n.lines_in_files(); }, 30s));
    REQUIRE(::truncate((n.dir / "attempt.log").c_str(), 100) == 0);
    const bool seen = testing::wait_until(
        [&] { return testing::read_file(n.dir / "ship.log").find("shrank from") != std::string::npos; }, 10s);
    const std::string log = testing::read_file(n.dir / "ship.log");
    INFO(log);
    CHECK(seen);
    CHECK(log.find("logrotate's copytruncate") != std::string::npos);
    CHECK(shipper.stop(SIGTERM) == 1); // a file whose shipping stopped is a failure
}

TEST_CASE("ship: the Exim adapter's file, appended by many processes and moved away, ships exactly once", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    const OneServer server;
    testing::TempDir dir;
    const std::string mtalog_conf = dir / "exim-mtalog.conf";
    testing::write_file(mtalog_conf,
                        "mtalog {\n  attempt_logfile = \"" + dir / "exim.csv" + "\"\n  attempt_format = csv\n}\n");
    testing::write_file(dir / "ship.conf", "mtalog_ship {\n  mtalog_config = \"exim-mtalog.conf\"\n  servers = \"" +
                                               server.url() + "\"\n  node = \"exim1\"\n  state_dir = \"" +
                                               dir / "state" + "\"\n  rotated_idle = 1s\n}\n");
    testing::Process shipper({testing::mtalog_ship_exe(), dir / "ship.conf"}, dir / "ship.log", dir.path());
    constexpr int kProcesses = 4, kRecords = 3000;
    testing::exim_deliveries(mtalog_conf, kProcesses, kRecords, "p", dir / "exim.csv");
    const testing::StreamReader reader = server.reader();
    CHECK(testing::wait_until([&] { return reader.messages("MTALOG") == kProcesses * kRecords; }, 30s));
    CHECK(shipper.stop(SIGTERM) == 0);
    const auto stored = reader.read_all("MTALOG");
    std::multiset<std::string> in_stream, in_files;
    for (const auto &m : stored) {
        in_stream.insert(m.payload);
        CHECK(m.subject == "mtalog.exim1.attempt");
    }
    const std::string header = testing::read_lines(dir / "exim.csv.1").at(0);
    for (auto &l : testing::records_of(dir / "exim.csv", header))
        in_files.insert(l);
    CHECK(in_files.size() == static_cast<std::size_t>(kProcesses * kRecords));
    CHECK(in_stream == in_files);
}

TEST_CASE("ship: tail prints the fleet's records, or writes one file per node and type", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    n.generate(3000);
    REQUIRE(n.ship_once().status == 0);
    const auto printed = testing::run_command({testing::mtalog_ship_exe(), "tail", "--count", "10", n.ship_conf},
                                              n.dir.path(), "", 30);
    CHECK(printed.status == 0);
    std::set<std::string> records;
    for (const char *file : {"attempt.log", "bounce.json"})
        for (const auto &line : testing::read_lines(n.dir / file))
            records.insert("n1 " + line);
    std::istringstream lines(printed.out);
    int count = 0;
    for (std::string line; std::getline(lines, line); ++count)
        CHECK(records.count(line) == 1);
    CHECK(count == 10);
    const auto out_dir = n.dir / "fleet";
    const auto written =
        testing::run_command({testing::mtalog_ship_exe(), "tail", "--durable", "to-files",
                              "--out-dir", out_dir, "--idle-ms", "1000", n.ship_conf}, n.dir.path(), "", 30);
    INFO(written.err);
    CHECK(written.status == 0);
    CHECK(testing::read_file(out_dir + "/n1.attempt.log") == testing::read_file(n.dir / "attempt.log"));
    CHECK(testing::read_file(out_dir + "/n1.permanent_failure.log") == testing::read_file(n.dir / "bounce.json"));
    // The durable consumer remembers: a second run reads nothing new.
    const auto again = testing::run_command({testing::mtalog_ship_exe(), "tail", "--durable",
                                             "to-files", "--out-dir", out_dir, "--idle-ms", "1000", n.ship_conf},
                                            n.dir.path(), "", 30);
    CHECK(again.err.find("tail: 0 record(s) written") != std::string::npos);
    // Killed right after its state first names a new output file, before
    // the batch is written: the next run (once the server delivers the
    // unacknowledged batch again, after its 30 s ack wait) writes every
    // record, none skipped as seen. It runs with --idle-ms: idle, it must
    // still wait for what the durable consumer owes (bound to a durable
    // that already exists, where libnats 3.4.1 cannot answer through the
    // subscription).
    const auto crash_dir = n.dir / "crashed";
    const auto crashed = testing::run_command({"/usr/bin/env", "MTALOG_SHIP_CRASH_AT=tail-new-outputs-saved",
                                               testing::mtalog_ship_exe(), "tail", "--durable", "crashed", "--out-dir",
                                               crash_dir, n.ship_conf},
                                              n.dir.path());
    CHECK(crashed.status == 137);
    const std::string all = std::to_string(testing::read_lines(n.dir / "attempt.log").size() +
                                           testing::read_lines(n.dir / "bounce.json").size());
    const auto resumed =
        testing::run_command({testing::mtalog_ship_exe(), "tail", "--durable", "crashed",
                              "--out-dir", crash_dir, "--idle-ms", "1000", n.ship_conf}, n.dir.path(), "", 90);
    INFO(resumed.err);
    CHECK(resumed.status == 0);
    CHECK(resumed.err.find("the durable consumer still owes") != std::string::npos);
    CHECK(resumed.err.find("tail: " + all + " record(s) written") != std::string::npos);
    // The batch delivered again comes after the later ones: the same
    // records, each once, in another order.
    const auto sorted = [](std::vector<std::string> lines) {
        std::sort(lines.begin(), lines.end());
        return lines;
    };
    CHECK(sorted(testing::read_lines(crash_dir + "/n1.attempt.log")) == sorted(testing::read_lines(n.dir / "attempt.log")));
    CHECK(sorted(testing::read_lines(crash_dir + "/n1.permanent_failure.log")) ==
          sorted(testing::read_lines(n.dir / "bounce.json")));
}

TEST_CASE("ship: tail writes the records its durable consumer never delivers, read from the stream", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    n.generate(3000);
    REQUIRE(n.ship_once().status == 0);
    const std::size_t all = testing::read_lines(n.dir / "attempt.log").size() +
                            testing::read_lines(n.dir / "bounce.json").size();
    // The consumer delivers 40 records to another reader, which terminates
    // them: the consumer owes nothing for them and never delivers them again,
    // as one whose servers lost their bookkeeping (nats-server 2.9, a leader
    // killed mid-delivery) would. The first 10 come through a tail that
    // then ends (--count): the check against the stream only runs on an
    // open-ended read, so all 40 are still owed to the output, among records
    // that were written.
    const auto out_dir = n.dir / "fleet";
    const auto first = testing::run_command({testing::mtalog_ship_exe(), "tail", "--durable", "skipper",
                                             "--out-dir", out_dir, "--count", "10", n.ship_conf}, n.dir.path(), "", 30);
    INFO(first.err);
    REQUIRE(first.status == 0);
    REQUIRE(n.reader().terminate_in_durable("MTALOG", "skipper", "mtalog.>", 40) == 40);
    const auto rest = testing::run_command({testing::mtalog_ship_exe(), "tail", "--durable", "skipper", "--out-dir",
                                            out_dir, "--idle-ms", "1000", n.ship_conf}, n.dir.path(), "", 60);
    INFO(rest.err);
    CHECK(rest.status == 0);
    CHECK(rest.err.find("40 record(s) the stream holds (sequences 11 to 50) never came through the durable consumer") !=
          std::string::npos);
    CHECK(rest.err.find("tail: " + std::to_string(all - 10) + " record(s) written") != std::string::npos);
    // Each record once: the 40 after the rest, so compared as sets.
    const auto sorted = [](std::vector<std::string> lines) {
        std::sort(lines.begin(), lines.end());
        return lines;
    };
    CHECK(sorted(testing::read_lines(out_dir + "/n1.attempt.log")) == sorted(testing::read_lines(n.dir / "attempt.log")));
    CHECK(sorted(testing::read_lines(out_dir + "/n1.permanent_failure.log")) ==
          sorted(testing::read_lines(n.dir / "bounce.json")));
    // Checked through the stream's end: a run later finds nothing to add.
    const auto again = testing::run_command({testing::mtalog_ship_exe(), "tail", "--durable", "skipper", "--out-dir",
                                             out_dir, "--idle-ms", "1000", n.ship_conf}, n.dir.path(), "", 30);
    CHECK(again.err.find("tail: 0 record(s) written") != std::string::npos);
    CHECK(again.err.find("never came through") == std::string::npos);
}

namespace {

// A CA and a certificate it signed for `name` (server: IP 127.0.0.1).
void make_certificate(const std::string &dir, const std::string &ca, const std::string &name, bool server)
{
    auto run = [&](const std::vector<std::string> &argv) {
        const auto r = testing::run_command(argv, dir);
        INFO(r.err);
        REQUIRE(r.status == 0);
    };
    if (!fs::exists(dir + "/" + ca + ".pem"))
        run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + "-key.pem", "-out",
             ca + ".pem", "-days", "2", "-subj", "/CN=" + ca});
    run({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + "-key.pem", "-out",
         name + ".csr", "-subj", "/CN=" + name});
    testing::write_file(dir + "/" + name + ".ext", server ? "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                                                          : "extendedKeyUsage=clientAuth\n");
    run({"/usr/bin/openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + "-key.pem",
         "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext"});
}

} // namespace

TEST_CASE("ship: TLS with a client certificate; a server the CA did not sign is refused", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    if (!fs::exists("/usr/bin/openssl")) {
        WARN("skipped: openssl is not installed (scripts/install-deps installs it)");
        return;
    }
    testing::TempDir servers;
    const std::string d = servers.path();
    make_certificate(d, "ca", "server", true);
    make_certificate(d, "ca", "client", false);
    make_certificate(d, "other-ca", "stranger", true);
    const int port = testing::free_port();
    testing::write_file(d + "/n.conf", "listen: 127.0.0.1:" + std::to_string(port) + "\njetstream { store_dir: \"" + d +
                                           "/js\" }\ntls {\n  cert_file: \"" + d + "/server.pem\"\n  key_file: \"" + d +
                                           "/server-key.pem\"\n  ca_file: \"" + d + "/ca.pem\"\n  verify: true\n}\n");
    testing::Process server({testing::nats_server_exe(), "-c", d + "/n.conf"}, d + "/n.log");
    const std::string url = "tls://127.0.0.1:" + std::to_string(port);
    ShipNode n(url, "  tls_ca = \"" + d + "/ca.pem\"\n  tls_cert = \"" + d + "/client.pem\"\n  tls_key = \"" + d +
                        "/client-key.pem\"\n");
    n.generate(3000);
    auto r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("stopped: " + std::to_string(n.lines_in_files()) + " records shipped") != std::string::npos);

    // Trusting another CA, the shipper does not talk to this server at all.
    n.write_ship_conf(url, "  tls_ca = \"" + d + "/other-ca.pem\"\n  tls_cert = \"" + d +
                               "/client.pem\"\n  tls_key = \"" + d + "/client-key.pem\"\n");
    r = testing::run_command({"/usr/bin/timeout", "3", testing::mtalog_ship_exe(), "--once", n.ship_conf},
                             n.dir.path());
    CHECK(r.status == 124); // still retrying when stopped
    CHECK(r.err.find("cannot connect to any of the servers") != std::string::npos);
}

TEST_CASE("ship: only the live file and its rotated names are shipped; headers of other versions are headers", "[ship]")
{
    using mtalog::ship::is_rotated_sibling;
    for (const char *name : {"m.log.20231114-230000", "m.log.20231114-230000-2.zst", "m.log.1", "m.log.12.gz",
                             "m.log-20231114", "m.log-20231114-3.gz"})
        CHECK(is_rotated_sibling(name, "m.log"));
    for (const char *name : {"m.log.json", "m.log.orig", "m.log.1.bak", "m.log.20231114-230000.zst.tmp", "m.log-old",
                             "m.logx", "m.log.", "m.log-2023"})
        CHECK_FALSE(is_rotated_sibling(name, "m.log"));
    CHECK(mtalog::ship::header_length("type,a,b\nattempt,1,2\n", "type,a,b") == 9);
    CHECK(mtalog::ship::header_length("type,a\nattempt,1,2\n", "type,a,b") == 7); // another version's columns
    CHECK(mtalog::ship::header_length("attempt,1,2\n", "type,a,b") == 0);
    CHECK(mtalog::ship::header_length("type,a,b\n", "") == 0);
}

TEST_CASE("ship: a finished file that grows again ships its new records; a copy of a file beside it is refused",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  rotated_idle = 100ms\n");
    n.generate(2000);
    fs::rename(n.dir / "attempt.log", n.dir / "attempt.log.1"); // a rotation
    n.generate(2000, 2);                                        // the new live file
    REQUIRE(n.ship_once().status == 0);
    // A writer that still had the renamed file open appends to it.
    const std::string late = testing::read_lines(n.dir / "attempt.log").at(0) + "-late";
    {
        std::ofstream out(n.dir / "attempt.log.1", std::ios::app);
        out << late << "\n";
    }
    auto r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("grew after it was finished: shipping the") != std::string::npos);
    const testing::StreamReader reader = n.reader();
    check_exactly_once(reader, n.lines_in_files());

    // A copy of a file beside it begins with the same record: refused, loudly.
    fs::copy_file(n.dir / "attempt.log.1", n.dir / "attempt.log.2");
    r = n.ship_once();
    CHECK(r.status == 1);
    CHECK(r.err.find("is a copy of") != std::string::npos);
    check_exactly_once(reader, n.lines_in_files() - static_cast<long long>(testing::read_lines(n.dir / "attempt.log.2").size()));
}
