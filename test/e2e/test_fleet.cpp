// Fleet shipping end to end, with real servers: a three-server JetStream
// cluster on loopback (a 3-replica, file-stored stream with a short duplicate
// window), two nodes (two mtacore processes writing their own files, one
// rotated by the real logrotate with gzip, one by mtalog's own size rotation
// with zstd, one file in CSV with its header) and their mtalog-ship
// processes, and a third node whose file many Exim delivery processes append
// to through the adapter (renamed away mid-run, as logrotate would). Faults: kill -9 of the stream leader, all three servers stopped
// for longer than the duplicate window, kill -9 of a shipper while it lags,
// kill -9 of an mtacore mid-run. Afterwards the stream holds exactly the
// records in the nodes' files: each once, byte for byte (how many went out
// after a later record of their file, re-sent after a failover, is reported).
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/stat.h>
#include <thread>

#include "csv_format.hpp"
#include "file_checks.hpp"
#include "fleet.hpp"
#include "spool.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char *kStream = "FLEET";

struct Node {
    std::string name, dir, core_conf, ship_conf;
    testing::Process shipper;
    std::map<std::string, long long> totals;       // summed over the shipper's runs (from status.json)
    std::map<std::string, long long> audit_totals; // of the audit run

    void start_shipper()
    {
        shipper = testing::Process({testing::mtalog_ship_exe(), ship_conf}, dir + "/ship.log", dir);
    }
    // Adds the counters of the shipper run that just ended.
    void account(bool audit = false)
    {
        const std::string status = testing::read_file(dir + "/state/status.json");
        if (status.empty())
            return;
        const auto j = nlohmann::json::parse(status);
        for (const char *k : {"shipped", "duplicates", "found_stored", "unresolved", "failed_publishes", "resyncs",
                              "false_duplicates", "copies_deleted", "unconfirmed"})
            (audit ? audit_totals : totals)[k] += j.at(k).get<long long>();
        fs::remove(dir + "/state/status.json");
    }
    void stop_shipper()
    {
        if (shipper.running())
            CHECK(shipper.stop(SIGTERM) == 0);
        account();
    }
    void generate(int records)
    {
        const auto r =
            testing::run_command({testing::mtacore_exe(), "--config", core_conf, "--generate", std::to_string(records),
                                  "--threads", "2", "--reopens", "0", "--quiet", "--seed", std::to_string(++runs)},
                                 dir);
        INFO(r.err);
        REQUIRE(r.status == 0);
    }
    int runs = 0;
};

std::string ship_stanza(const Node &n, const std::string &urls, const std::string &extra = "")
{
    return "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"" +
           urls +
           "\"\n"
           "  stream = \"" +
           std::string(kStream) +
           "\"\n"
           "  node = \"" +
           n.name +
           "\"\n"
           "  state_dir = \"state\"\n  replicas = 3\n  duplicate_window = 10s\n  ack_wait = 1s\n"
           "  retry_max = 1s\n  status_interval = 200ms\n  rotated_idle = 300ms\n  max_pending = 2048\n" +
           extra + "}\n";
}

void logrotate(const Node &n)
{
    testing::write_file(n.dir + "/logrotate.conf", n.dir + "/attempt.log " + n.dir + "/connfail.log " + n.dir +
                                                       "/bounce.json {\n"
                                                       "  rotate 1000\n  compress\n  create\n  missingok\n  "
                                                       "notifempty\n}\n");
    const auto r = testing::run_command(
        {"/usr/sbin/logrotate", "-f", "-s", n.dir + "/logrotate.state", n.dir + "/logrotate.conf"});
    INFO(r.err);
    REQUIRE(r.status == 0);
}

// Waits until the shipper says it has nothing left (status.json lag 0 with
// every file read), or `limit`.
bool caught_up(const Node &n, std::chrono::seconds limit)
{
    return testing::wait_until(
        [&] {
            const std::string s = testing::read_file(n.dir + "/state/status.json");
            if (s.empty())
                return false;
            try {
                const auto j = nlohmann::json::parse(s);
                return j.at("lag_records").get<long long>() == 0 && j.at("lag_bytes").get<long long>() == 0 &&
                       j.at("connected").get<bool>();
            } catch (const std::exception &) {
                return false; // being replaced
            }
        },
        limit);
}

struct FileOfNode {
    std::string path, header;
};

} // namespace

TEST_CASE("every record of two nodes lands exactly once in a 3-replica stream through rotation, outages and kill -9", "[fleet]")
{
    if (!testing::nats_server_installed() || !fs::exists("/usr/sbin/logrotate"))
        return;
    testing::TempDir dir;
    testing::NatsCluster cluster(dir, 3);

    Node a, b, c; // c: Exim delivery processes through the adapter
    a.name = "node-a";
    b.name = "node-b";
    c.name = "node-c";
    for (Node *n : {&a, &b, &c}) {
        n->dir = dir / n->name;
        fs::create_directories(n->dir);
        n->core_conf = n->dir + "/core.conf";
        n->ship_conf = n->dir + "/ship.conf";
        testing::write_file(n->ship_conf, ship_stanza(*n, cluster.urls()));
    }
    testing::write_file(a.core_conf, "modules_path = \"" + testing::modules_dir() +
                                         "\"\n"
                                         "mtalog \"a\" {\n  attempt_logfile = \"attempt.log\"\n"
                                         "  connection_failure_logfile = \"connfail.log\"\n"
                                         "  permanent_failure_logfile = \"bounce.json\"\n"
                                         "  permanent_failure_format = \"json\"\n}\n");
    testing::write_file(b.core_conf, "modules_path = \"" + testing::modules_dir() +
                                         "\"\n"
                                         "mtalog \"b\" {\n  attempt_logfile = \"attempt.csv\"\n"
                                         "  attempt_format = \"csv\"\n  connection_failure_logfile = \"mainlog.ec\"\n"
                                         "  permanent_failure_logfile = \"mainlog.ec\"\n  rotate_size = 2M\n"
                                         "  rotate_keep = 0\n  compress = zstd\n}\n");
    testing::write_file(c.core_conf, "mtalog {\n"
                                     "  attempt_logfile = \"" + c.dir + "/exim.csv\"\n"
                                     "  attempt_format = \"csv\"\n"
                                     "}\n");
    const std::vector<std::pair<Node *, FileOfNode>> files{
        {&c, {"exim.csv", mtalog::csv_header()}},
        {&a, {"attempt.log", ""}}, {&a, {"connfail.log", ""}},
        {&a, {"bounce.json", ""}}, {&b, {"attempt.csv", mtalog::csv_header()}},
        {&b, {"mainlog.ec", ""}},
    };
    const testing::StreamReader reader{cluster.urls(), "", ""};
    std::string faults;

    a.start_shipper();
    b.start_shipper();
    c.start_shipper();
    a.generate(60000);
    b.generate(60000);
    logrotate(a);

    // 1. kill -9 the stream's leader, then log while the stream has no leader
    // (publishes fail and are retried), and start it again. The kill comes
    // when the shippers have caught up: nats-server 2.9.10 can hide messages
    // it acknowledged just before its stream leader was killed from every
    // consumer for minutes (seen here: 64 records acknowledged in the last
    // 100 ms before the kill, missing from every read until new messages
    // were stored; nats-server issue 3402 is of this kind). That is the
    // engine's fault, not the shipper's, and no client can tell it from a
    // lost record.
    REQUIRE(caught_up(a, 120s));
    REQUIRE(caught_up(b, 120s));
    REQUIRE(caught_up(c, 120s));
    std::this_thread::sleep_for(1s);
    std::string leader;
    REQUIRE(testing::wait_until([&] { return !(leader = reader.leader(kStream)).empty(); }, 30s));
    const int leader_index = cluster.index_of(leader);
    REQUIRE(leader_index >= 0);
    cluster.kill9(leader_index);
    faults += "kill -9 of stream leader " + leader + "; ";
    a.generate(60000);
    b.generate(60000);
    testing::exim_deliveries(c.core_conf, 4, 5000, "leaderless", c.dir + "/exim.csv");
    cluster.start(leader_index);
    logrotate(a);

    // 2. kill -9 a shipper while it is behind, and start it again.
    a.generate(60000);
    b.generate(60000);
    std::this_thread::sleep_for(300ms);
    a.shipper.kill9();
    a.account();
    faults += "kill -9 of node-a's shipper; ";
    a.start_shipper();

    // 3. every server stopped for longer than the duplicate window (10 s) while
    // the nodes log. As with the leader, the servers stop once the shippers
    // have caught up: messages a leader took in but had not committed when it
    // stopped were seen by a read-back after the restart and then rolled back
    // by the next election (254 records in one run), which no client can tell
    // from stored ones.
    a.generate(30000);
    b.generate(30000);
    std::this_thread::sleep_for(1s); // status.json (every 200 ms) shows the new lines
    REQUIRE(caught_up(a, 120s));
    REQUIRE(caught_up(b, 120s));
    REQUIRE(caught_up(c, 120s));
    std::this_thread::sleep_for(1s);
    for (int i = 0; i < 3; ++i)
        cluster.stop(i);
    faults += "all three servers stopped for 12 s; ";
    a.generate(30000);
    b.generate(30000);
    logrotate(a);
    testing::exim_deliveries(c.core_conf, 4, 5000, "outage");
    std::this_thread::sleep_for(12s);
    for (int i = 0; i < 3; ++i)
        cluster.start(i);

    // 4. kill -9 an mtacore mid-run, then run it again.
    {
        testing::Process core({testing::mtacore_exe(), "--config", b.core_conf, "--generate", "5000000", "--threads",
                               "2", "--reopens", "0", "--quiet", "--seed", "99"},
                              b.dir + "/killed-core.log", b.dir);
        std::this_thread::sleep_for(250ms);
        core.kill9();
        faults += "kill -9 of node-b's mtacore mid-run";
    }
    b.generate(20000);
    a.generate(20000);

    // What the nodes' files hold (read without mtalog-ship's own code).
    std::map<std::pair<std::string, std::string>, long long> expected; // (node, line) -> count
    long long in_files = 0;
    for (const auto &[node, f] : files)
        for (auto &line : testing::records_of(node->dir + "/" + f.path, f.header)) {
            ++expected[{node->name, std::move(line)}];
            ++in_files;
        }
    // The running shippers catch up: the stream holds as many messages.
    CHECK(testing::wait_until([&] { return reader.messages(kStream) >= in_files; }, 240s));
    a.stop_shipper();
    b.stop_shipper();
    c.stop_shipper();
    // What the stream holds, against the files.
    struct Comparison {
        long long stored = 0, missing = 0, extra = 0, doubled_ids = 0, out_of_order = 0;
        std::string sample;
    };
    auto compare = [&] {
        Comparison c;
        const auto stored = reader.read_all(kStream);
        c.stored = static_cast<long long>(stored.size());
        std::map<std::pair<std::string, std::string>, long long> got;
        std::set<std::string> ids;
        std::map<std::string, std::uint64_t> last_offset; // node.key -> offset
        for (const auto &m : stored) {
            ++got[{m.node, m.payload}];
            c.doubled_ids += ids.insert(m.id).second ? 0 : 1;
            const auto dot = m.id.rfind('.');
            const std::string file = m.id.substr(0, dot);
            const std::uint64_t offset = std::stoull(m.id.substr(dot + 1));
            if (const auto it = last_offset.find(file); it != last_offset.end() && it->second >= offset)
                ++c.out_of_order;
            last_offset[file] = offset;
            CHECK(m.subject.rfind("mtalog." + m.node + ".", 0) == 0); // <prefix>.<node>.<type>
        }
        for (const auto &[k, n] : expected) {
            const long long lost = std::max(0LL, n - (got.count(k) ? got.at(k) : 0));
            if (lost && c.sample.size() < 2000)
                c.sample += k.first + ": " + k.second.substr(0, 150) + "\n";
            c.missing += lost;
        }
        for (const auto &[k, n] : got)
            c.extra += std::max(0LL, n - (expected.count(k) ? expected.at(k) : 0));
        if ((c.missing || c.extra) && std::getenv("FLEET_DEBUG")) { // keep everything for a post-mortem
            const std::string keep = std::getenv("FLEET_DEBUG");
            fs::remove_all(keep);
            fs::copy(dir.path(), keep, fs::copy_options::recursive);
            std::ofstream dump(keep + "/stream.txt");
            for (const auto &m : stored)
                dump << m.seq << ' ' << m.id << ' ' << m.payload << '\n';
        }
        return c;
    };
    const Comparison live = compare();
    INFO(live.sample);
    const auto total = [&](const char *counter) {
        return a.totals[counter] + b.totals[counter] + c.totals[counter];
    };
    const long long duplicates = total("duplicates");
    const long long found_stored = total("found_stored");
    WARN("fleet: " << in_files << " records in the nodes' files, " << live.stored << " in the stream ("
                   << live.missing << " missing, " << live.extra << " extra, " << live.doubled_ids
                   << " ids stored twice, " << live.out_of_order << " sent again after a later one); " << duplicates
                   << " duplicates dropped by the server, " << found_stored << " found stored by read-back, "
                   << total("unconfirmed") << " not confirmed by the next read (sent again or found again), "
                   << total("failed_publishes") << " failed publishes, " << total("resyncs")
                   << " resyncs; faults: " << faults);
    CHECK(in_files >= 400000);
    CHECK(live.missing == 0);
    CHECK(live.extra == 0);
    CHECK(live.doubled_ids == 0);
    CHECK(live.stored == in_files);

    // The audit (a full read-back against every file) agrees: nothing to repair.
    for (Node *n : {&a, &b, &c}) {
        const auto r = testing::run_command(
            {"/usr/bin/timeout", "300", testing::mtalog_ship_exe(), "--audit", "--once", n->ship_conf}, n->dir);
        INFO(r.err);
        REQUIRE(r.status == 0);
        n->account(true);
        CHECK(n->audit_totals["shipped"] == 0);
        CHECK(n->audit_totals["copies_deleted"] == 0);
    }
    // Whatever the audits did, the stream still holds exactly the files' records.
    const Comparison audited = compare();
    INFO(audited.sample);
    CHECK(audited.missing == 0);
    CHECK(audited.extra == 0);
    CHECK(audited.doubled_ids == 0);
    // The faults hit the publish path: publishes failed and the shippers
    // recovered. Whether a record was stored before its ack was lost (then
    // found by a read-back) depends on timing here; test_ship's paused-server
    // case has such records on every run.
    CHECK(total("failed_publishes") > 0);
    // Built-in rotation with zstd and logrotate with gzip both ran.
    bool zst = false, gz = false;
    for (const auto &e : fs::directory_iterator(b.dir))
        zst = zst || e.path().extension() == ".zst";
    for (const auto &e : fs::directory_iterator(a.dir))
        gz = gz || e.path().extension() == ".gz";
    CHECK(zst);
    CHECK(gz);
}
