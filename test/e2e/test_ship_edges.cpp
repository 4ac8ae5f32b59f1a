// mtalog-ship at the edges the review of its first version found (one test
// per finding, against one real nats-server on loopback): a file's identity
// whatever its path's spelling or place, records written into a rotated file
// after it was finished, a stream that goes backwards, files that cannot be
// read for a while, status through an outage, mtalog's take-back of a
// partial line, files that begin alike, over-long lines, streams with
// limits, one shipper per state_dir, tail on a closed output, compressed
// files cut short, a partial last line with --once, and publishes a stream
// refuses.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <pwd.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "file_checks.hpp"
#include "fleet.hpp"
#include "ship_node.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::check_exactly_once;
using testing::NodeOnOneServer;

namespace {

void append(const std::string &path, const std::string &text)
{
    std::ofstream out(path, std::ios::app | std::ios::binary);
    out << text;
}

bool lag_zero(const testing::ShipNode &n)
{
    return n.status_value("lag_records") == 0 && n.status_value("lag_bytes") == 0 &&
           n.status_value("unverified_records") == 0;
}

} // namespace

TEST_CASE("ship: a file keeps its key however its path is spelled, from any directory, and where its directory "
          "moves",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    const auto reader = n.reader();
    n.generate(2000);
    const long long records = n.lines_in_files();
    auto r = n.ship_once();
    INFO(r.err);
    REQUIRE(r.status == 0);
    REQUIRE(reader.messages("MTALOG") == records);
    const auto nothing_again = [&](const std::string &cwd = "") {
        const auto again = n.ship_once(60, cwd);
        INFO(again.err);
        CHECK(again.status == 0);
        CHECK(again.err.find("stopped: 0 records shipped") != std::string::npos);
        CHECK(reader.messages("MTALOG") == records);
    };
    n.write_core_conf("./attempt.log", "./bounce.json");
    nothing_again();
    n.write_core_conf(n.dir / "attempt.log", n.dir / "bounce.json");
    nothing_again("/"); // absolute paths, run from elsewhere
    // The whole directory moved elsewhere (copied: other inodes, as across
    // file systems).
    fs::create_directory(n.dir / "moved");
    for (const std::string f : {"attempt.log", "bounce.json"}) {
        fs::copy_file(n.dir / f, n.dir / ("moved/" + f));
        fs::remove(n.dir / f);
    }
    n.write_core_conf("moved/attempt.log", "moved/bounce.json");
    nothing_again();
    check_exactly_once(reader, records);
}

TEST_CASE("ship: a record written into a rotated file after it was finished is shipped, also once the file is "
          "compressed",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  rotated_idle = 500ms\n");
    const auto reader = n.reader();
    n.generate(1000);
    testing::Process shipper = n.start_shipper();
    const auto caught_up = [&] {
        return testing::wait_until([&] { return lag_zero(n) && reader.messages("MTALOG") == n.lines_in_files(); },
                                   30s);
    };
    REQUIRE(caught_up());
    // Rotated (create + a new live file); finished once idle.
    fs::rename(n.dir / "attempt.log", n.dir / "attempt.log.1");
    n.generate(200, 2);
    REQUIRE(caught_up());
    std::this_thread::sleep_for(1500ms);
    // A writer that still had it open appends (plain, shipped from the file),
    append(n.dir / "attempt.log.1", "late record 1\nlate record 2\n");
    CHECK(caught_up());
    // then more, and the file is compressed at once (gzip, as logrotate).
    std::this_thread::sleep_for(1500ms);
    append(n.dir / "attempt.log.1", "late record 3\nlate record 4\nlate record 5\n");
    const auto r = testing::run_command({"/usr/bin/gzip", n.dir / "attempt.log.1"});
    REQUIRE(r.status == 0);
    CHECK(caught_up());
    CHECK(shipper.stop(SIGTERM) == 0);
    const std::string log = testing::read_file(n.dir / "ship.log");
    INFO(log);
    CHECK(log.find("grew after it was finished") != std::string::npos);
    check_exactly_once(reader, n.lines_in_files());
}

TEST_CASE("ship: a stream that went backwards (deleted and made again empty) gets every recent record back",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  reconcile_interval = 1s\n");
    const auto reader = n.reader();
    n.generate(2000);
    const long long records = n.lines_in_files();
    testing::Process shipper = n.start_shipper();
    REQUIRE(testing::wait_until([&] { return lag_zero(n) && reader.messages("MTALOG") == records; }, 30s));
    REQUIRE(reader.delete_stream("MTALOG"));
    // The shipper's next round finds no stream: it makes it again, sees its
    // last sequence below what it acknowledged, and sends everything again.
    CHECK(testing::wait_until([&] { return reader.messages("MTALOG") == records && lag_zero(n); }, 30s));
    CHECK(shipper.stop(SIGTERM) == 0);
    const std::string log = testing::read_file(n.dir / "ship.log");
    INFO(log);
    CHECK(log.find("went backwards") != std::string::npos);
    check_exactly_once(reader, records);
}

TEST_CASE("ship: a rotated file that cannot be read is tried again after retry_max; --once gives up on it with an "
          "error",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    // Root reads whatever the mode: as root, the shipper runs as nobody.
    const bool root = ::geteuid() == 0;
    if (root && (!fs::exists("/usr/bin/setpriv") || !::getpwnam("nobody"))) {
        WARN("skipped: running as root without setpriv (util-linux) or the user nobody");
        return;
    }
    testing::OneServer server;
    const auto reader = server.reader();
    testing::TempDir tmp;
    const std::string d = tmp.path();
    ::chmod(d.c_str(), 0777);
    fs::copy_file(testing::mtalog_ship_exe(), d + "/mtalog-ship");
    ::chmod((d + "/mtalog-ship").c_str(), 0755);
    testing::write_file(d + "/core.conf", "modules_path = \"" + testing::modules_dir() +
                                              "\"\nmtalog {\n  attempt_logfile = \"attempt.log\"\n"
                                              "  log_connection_failures = off\n  log_permanent_failures = off\n}\n");
    testing::write_file(d + "/ship.conf", "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"" +
                                              server.url() +
                                              "\"\n  node = \"n1\"\n  state_dir = \"state\"\n  retry_max = 500ms\n"
                                              "  status_interval = 200ms\n  rotated_idle = 200ms\n}\n");
    const auto generate = [&](int records, int seed) {
        const auto r = testing::run_command({testing::mtacore_exe(), "--config", d + "/core.conf", "--generate",
                                             std::to_string(records), "--quiet", "--seed", std::to_string(seed)},
                                            d);
        REQUIRE(r.status == 0);
    };
    generate(1000, 1);
    fs::rename(d + "/attempt.log", d + "/attempt.log.1");
    generate(300, 2);
    for (const char *f : {"/core.conf", "/ship.conf", "/attempt.log"})
        ::chmod((d + f).c_str(), 0644);
    ::chmod((d + "/attempt.log.1").c_str(), 0600); // unreadable for the shipper
    const long long old_records = static_cast<long long>(testing::read_lines(d + "/attempt.log.1").size());
    const long long live_records = static_cast<long long>(testing::read_lines(d + "/attempt.log").size());
    std::vector<std::string> argv{d + "/mtalog-ship", "--once", d + "/ship.conf"};
    if (root)
        argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"});
    // --once ships the live file, tries the other again, and gives up: an error.
    auto r = testing::run_command(argv, d, "", 60);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("cannot read \"./attempt.log.1\": Permission denied") != std::string::npos);
    CHECK(r.err.find("error: not shipped: \"./attempt.log.1\" (Permission denied)") != std::string::npos);
    CHECK(reader.messages("MTALOG") == live_records);
    // The daemon tries it again after retry_max: readable again, it ships.
    argv.erase(std::find(argv.begin(), argv.end(), "--once"));
    testing::Process shipper(argv, d + "/ship.log", d);
    std::this_thread::sleep_for(1500ms);
    CHECK(reader.messages("MTALOG") == live_records);
    ::chmod((d + "/attempt.log.1").c_str(), 0644);
    CHECK(testing::wait_until([&] { return reader.messages("MTALOG") == live_records + old_records; }, 15s));
    CHECK(shipper.stop(SIGTERM) == 0);
    check_exactly_once(reader, live_records + old_records);
}

TEST_CASE("ship: status, metrics and lag stay live through an outage: not connected, lag growing", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  metrics_file = \"ship.prom\"\n");
    const auto reader = n.reader();
    n.generate(1000);
    testing::Process shipper = n.start_shipper();
    REQUIRE(testing::wait_until([&] { return lag_zero(n) && n.status()["connected"] == true; }, 30s));
    n.cluster.kill9(0);
    n.generate(500, 2);
    CHECK(testing::wait_until(
        [&] {
            const auto j = n.status();
            return j.is_object() && j["connected"] == false && j.value("lag_records", 0) >= 200 &&
                   testing::read_file(n.dir / "ship.prom").find("mtalog_ship_connected{node=\"n1\",stream=\"MTALOG\"} 0") !=
                       std::string::npos;
        },
        10s));
    // SIGUSR1 writes it at once, during the outage too.
    std::filesystem::remove(n.dir / "state/status.json");
    REQUIRE(::kill(shipper.pid(), SIGUSR1) == 0);
    CHECK(testing::wait_until([&] { return n.status().is_object(); }, 2s));
    // So does SIGHUP (systemctl reload), which must not end the shipper.
    std::filesystem::remove(n.dir / "state/status.json");
    REQUIRE(::kill(shipper.pid(), SIGHUP) == 0);
    CHECK(testing::wait_until([&] { return n.status().is_object(); }, 2s));
    CHECK(shipper.running());
    n.cluster.start(0);
    CHECK(testing::wait_until([&] { return lag_zero(n) && reader.messages("MTALOG") == n.lines_in_files(); }, 60s));
    CHECK(shipper.stop(SIGTERM) == 0);
    check_exactly_once(reader, n.lines_in_files());
}

TEST_CASE("ship: a partial last line taken back (mtalog after a short write) is not taken for copytruncate",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  rotated_idle = 200ms\n");
    const auto reader = n.reader();
    n.generate(500);
    const long long records = n.lines_in_files();
    testing::Process shipper = n.start_shipper();
    REQUIRE(testing::wait_until([&] { return lag_zero(n) && reader.messages("MTALOG") == records; }, 30s));
    const auto size = fs::file_size(n.dir / "attempt.log");
    append(n.dir / "attempt.log", "1700000000@00/00-00001-00000001@@@A@partial");
    std::this_thread::sleep_for(1s); // read by the shipper
    // Waiting for the partial line's newline is idle, not a busy loop.
    const double cpu_before = shipper.cpu_seconds();
    std::this_thread::sleep_for(2s);
    const double cpu = shipper.cpu_seconds() - cpu_before;
    WARN("CPU while the file ended in a partial line: " << cpu << " s in 2 s");
    CHECK(cpu < 0.4);
    REQUIRE(::truncate((n.dir / "attempt.log").c_str(), static_cast<off_t>(size)) == 0);
    append(n.dir / "attempt.log", "1700000000@00/00-00001-00000002@@@A@whole\n");
    CHECK(testing::wait_until([&] { return reader.messages("MTALOG") == records + 1; }, 15s));
    CHECK(shipper.stop(SIGTERM) == 0);
    const std::string log = testing::read_file(n.dir / "ship.log");
    INFO(log);
    CHECK(log.find("shrank") == std::string::npos);
    const auto stored = reader.read_all("MTALOG");
    CHECK(std::any_of(stored.begin(), stored.end(), [](const auto &m) { return m.payload.ends_with("@A@whole"); }));
    CHECK(std::none_of(stored.begin(), stored.end(), [](const auto &m) { return m.payload.find("partial") != std::string::npos; }));
}

TEST_CASE("ship: two files that begin with the same record lose nothing", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    const auto reader = n.reader();
    std::string old = "X\n";
    for (int i = 1; i < 100; ++i)
        old += "a-" + std::to_string(i) + "\n";
    testing::write_file(n.dir / "attempt.log", old);
    REQUIRE(n.ship_once().status == 0);
    REQUIRE(reader.messages("MTALOG") == 100);
    fs::rename(n.dir / "attempt.log", n.dir / "attempt.log.1");
    REQUIRE(testing::run_command({"/usr/bin/zstd", "-q", "--rm", n.dir / "attempt.log.1"}).status == 0);
    std::string fresh = "X\n";
    for (int i = 1; i <= 50; ++i)
        fresh += "b-" + std::to_string(i) + "\n";
    testing::write_file(n.dir / "attempt.log", fresh);
    const auto r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("stopped: 51 records shipped") != std::string::npos);
    CHECK(r.err.find("generation 2") != std::string::npos);
    check_exactly_once(reader, 151);
    // A young file that so far holds only that first record is apart too.
    fs::rename(n.dir / "attempt.log", n.dir / "attempt.log.2");
    testing::write_file(n.dir / "attempt.log", "X\n");
    CHECK(n.ship_once().status == 0);
    check_exactly_once(reader, 152);
}

TEST_CASE("ship: a line longer than max_line is reported, counted and skipped, and shipping goes on", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    const auto reader = n.reader();
    n.generate(200);
    const long long records = n.lines_in_files();
    REQUIRE(n.ship_once().status == 0);
    append(n.dir / "attempt.log", std::string(2 << 20, '\0') + "\nafter 1\nafter 2\nafter 3\n"); // a power loss's tail
    const auto r = n.ship_once();
    INFO(r.err.substr(0, 4000));
    CHECK(r.status == 0);
    CHECK(r.err.find("has a line longer than 1048576 bytes") != std::string::npos);
    CHECK(n.status_value("skipped_lines") == 1);
    check_exactly_once(reader, records + 3);
    // The skipped line is final: a later run does not trip over it again.
    const auto again = n.ship_once();
    CHECK(again.err.find("longer than") == std::string::npos);
    CHECK(again.err.find("stopped: 0 records shipped") != std::string::npos);
}

TEST_CASE("ship: after a lost cursor, records that aged out of a stream with limits are not shipped again", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  create_stream = off\n");
    const auto reader = n.reader();
    REQUIRE(testing::wait_until([&] { return reader.create_stream("MTALOG", "mtalog.>", 300); }, 15s));
    n.generate(2000);
    REQUIRE(n.ship_once().status == 0);
    REQUIRE(reader.messages("MTALOG") == 300);
    fs::remove(n.dir / "state/cursor.json");
    const auto r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("stopped: 0 records shipped") != std::string::npos);
    CHECK(reader.messages("MTALOG") == 300);
}

TEST_CASE("ship: one shipper per state_dir; --audit beside a running shipper refuses", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    n.generate(500);
    testing::Process shipper = n.start_shipper();
    REQUIRE(testing::wait_until([&] { return n.status().is_object(); }, 30s));
    const auto r =
        testing::run_command({testing::mtalog_ship_exe(), "--audit", "--once", n.ship_conf}, n.dir.path(), "", 30);
    CHECK(r.status == 1);
    CHECK(r.err.find("is in use by another mtalog-ship (process " + std::to_string(shipper.pid()) + ")") !=
          std::string::npos);
    CHECK(shipper.stop(SIGTERM) == 0);
    const auto audit =
        testing::run_command({testing::mtalog_ship_exe(), "--audit", "--once", n.ship_conf}, n.dir.path(), "", 60);
    INFO(audit.err);
    CHECK(audit.status == 0);
    check_exactly_once(n.reader(), n.lines_in_files());
}

TEST_CASE("ship: tail ends when its output is closed", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    n.generate(3000);
    REQUIRE(n.ship_once().status == 0);
    const auto r = testing::run_command(
        {"/bin/bash", "-c",
         "set -o pipefail; timeout 20 '" + testing::mtalog_ship_exe() + "' tail '" + n.ship_conf + "' | head -n 1"},
        n.dir.path());
    INFO(r.err);
    CHECK(r.status == 0); // not 124: it ended by itself
    CHECK(r.out.rfind("n1 ", 0) == 0);
    CHECK(r.err.find("the output was closed") != std::string::npos);
}

TEST_CASE("ship: a compressed file cut short is not taken as complete", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n;
    const auto reader = n.reader();
    n.generate(3000);
    fs::rename(n.dir / "attempt.log", n.dir / "attempt.log.1");
    REQUIRE(testing::run_command({"/usr/bin/gzip", "-k", n.dir / "attempt.log.1"}).status == 0);
    const std::string whole = testing::read_file(n.dir / "attempt.log.1.gz");
    fs::remove(n.dir / "attempt.log.1");
    testing::write_file(n.dir / "attempt.log.1.gz", whole.substr(0, whole.size() / 2)); // being written
    n.generate(100, 2);
    // What the cut file holds is shipped, and it is read again once complete.
    auto r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("ends before its compressed data does") != std::string::npos);
    const long long first = reader.messages("MTALOG");
    testing::write_file(n.dir / "attempt.log.1.gz.tmp", whole);
    fs::rename(n.dir / "attempt.log.1.gz.tmp", n.dir / "attempt.log.1.gz"); // complete now
    const long long all = n.lines_in_files();
    CHECK(first < all);
    r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("stopped: " + std::to_string(all - first) + " records shipped") != std::string::npos);
    check_exactly_once(reader, all);
}

TEST_CASE("ship: --once ends on a live file whose last line has no newline (a writer killed mid-record)", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  rotated_idle = 300ms\n");
    n.generate(500);
    append(n.dir / "attempt.log", "1700000000@00/00-00001-00000001@@@A@cut sho");
    const auto r = n.ship_once(30);
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("without a newline") != std::string::npos);
    check_exactly_once(n.reader(), n.lines_in_files());
}

TEST_CASE("ship: publishes a stream refuses back off instead of spinning, and shipping resumes when it takes them",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  create_stream = off\n");
    const auto reader = n.reader();
    // Full at 100: new ones refused.
    REQUIRE(testing::wait_until([&] { return reader.create_stream("MTALOG", "mtalog.>", 100, true); }, 15s));
    n.generate(1000);
    testing::Process shipper = n.start_shipper();
    std::this_thread::sleep_for(6s);
    const long long failed = n.status_value("failed_publishes");
    CHECK(failed > 0);
    CHECK(failed < 2000); // backed off up to retry_max, not a publish per record per round
    CHECK(reader.messages("MTALOG") == 100);
    CHECK(shipper.running());
    // The stream made again without the limit (it went backwards: every
    // recent record is looked for and sent again): everything arrives.
    REQUIRE(reader.delete_stream("MTALOG"));
    REQUIRE(reader.create_stream("MTALOG", "mtalog.>", -1));
    const long long all = n.lines_in_files();
    CHECK(testing::wait_until([&] { return reader.messages("MTALOG") == all; }, 60s));
    CHECK(shipper.stop(SIGTERM) == 0);
    check_exactly_once(reader, all);
}

TEST_CASE("ship: a rotated file that ends in an over-long line without a newline is finished, and the next file "
          "shipped",
          "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  rotated_idle = 300ms\n");
    const auto reader = n.reader();
    n.generate(300);
    append(n.dir / "attempt.log", std::string(2 << 20, '\0')); // a power loss's tail, then rotated
    fs::rename(n.dir / "attempt.log", n.dir / "attempt.log.1");
    n.generate(300, 2);
    const auto r = n.ship_once(60);
    INFO(r.err.substr(0, 4000));
    CHECK(r.status == 0);
    CHECK(n.status_value("skipped_lines") == 1);
    check_exactly_once(reader, n.lines_in_files()); // (the NUL tail has no newline: no record)
    const auto again = n.ship_once(60);
    CHECK(again.err.find("longer than") == std::string::npos);
    CHECK(again.err.find("stopped: 0 records shipped") != std::string::npos);
}

TEST_CASE("ship: a whole line longer than max_line is skipped, not published", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  max_line = 2048\n");
    const auto reader = n.reader();
    n.generate(100);
    append(n.dir / "attempt.log", "long " + std::string(5000, 'x') + "\nshort after it\n");
    const auto r = n.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("has a line longer than 2048 bytes") != std::string::npos);
    check_exactly_once(reader, n.lines_in_files() - 1);
}

TEST_CASE("ship: after a lost cursor, memory stays bounded however many records the stream holds", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    NodeOnOneServer n("  max_pending = 1024\n");
    const auto reader = n.reader();
    n.generate(200000);
    REQUIRE(n.ship_once(120).status == 0);
    const long long records = n.lines_in_files();
    REQUIRE(reader.messages("MTALOG") == records);
    fs::remove(n.dir / "state/cursor.json");
    testing::Process shipper = n.start_shipper();
    // The first round reads all of this node's messages back: their ranges,
    // merged, not one entry per message.
    REQUIRE(testing::wait_until([&] { return lag_zero(n) && n.status_value("found_stored") == records; }, 120s));
    const std::string proc = testing::read_file("/proc/" + std::to_string(shipper.pid()) + "/status");
    const auto at = proc.find("VmHWM:");
    REQUIRE(at != std::string::npos);
    const long long peak_kib = std::stoll(proc.substr(at + 6));
    WARN("peak RSS after reading back " << records << " records: " << peak_kib << " KiB");
#if !defined(__SANITIZE_ADDRESS__) // its shadow memory and quarantine are not the shipper's
    CHECK(peak_kib < 64 * 1024);
#endif
    CHECK(shipper.stop(SIGTERM) == 0);
    check_exactly_once(reader, records);
    // SIGTERM in the middle of such a read-back ends the shipper at once
    // (the read checks for a stop before each fetch of at most a second).
    fs::remove(n.dir / "state/cursor.json");
    const std::size_t before = testing::read_file(n.dir / "ship.log").size();
    testing::Process again = n.start_shipper();
    std::this_thread::sleep_for(700ms);
    const auto asked = std::chrono::steady_clock::now();
    CHECK(again.stop(SIGTERM) == 0);
    const auto took = std::chrono::steady_clock::now() - asked;
    const std::string log = testing::read_file(n.dir / "ship.log").substr(before);
    INFO(log);
    CHECK(took < 3s);
    if (log.find("read back ") != std::string::npos) // (150,000 headers take this machine seconds)
        WARN("the read-back had ended before SIGTERM: only a plain stop was timed");
}
