// The fleet under fire: a three-server JetStream cluster on loopback (a
// 3-replica, file-stored stream with a 5 s duplicate window), three nodes
// and their shippers, and faults that come while records are being
// published:
// - node-a: mtacore at a steady rate (mainlog and JSON files), rotated by
//   the real logrotate with gzip (create, SIGHUP);
// - node-b: mtacore at a steady rate (CSV and mainlog), mtalog's own size
//   rotation with zstd; its mtacore is killed with SIGKILL mid-run;
// - node-c: Exim delivery processes through the adapter (CSV), the file
//   renamed away mid-run as logrotate would;
// - the stream's leader killed with SIGKILL, all three servers stopped for
//   longer than twice the duplicate window, each shipper killed with
//   SIGKILL at a moment of the seeded random schedule, and the reader
//   (`mtalog-ship tail --out-dir`) killed with SIGKILL twice.
// Then, once the shippers are caught up and have found every record they
// shipped in the stream, the stream is read by a reader that shares no code
// with ship/ (test/support/fleet.cpp) and compared with the files (read
// with gzip and zstd, independently of the shipper's listing): no record
// missing, no payload the files lack, copies (one record id at two
// sequences) counted and printed; and tail's files are equal to the nodes'
// records, each once.
//
// FLEET_SECONDS (traffic, default 40), FLEET_RATE (hook calls per second per
// node, default 1500) and FLEET_SEED (the fault schedule) make it longer:
// scripts/fleet-soak runs it so, many times. It prints one line
// "FLEET-RESULT key=value ..." for that script.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "csv_format.hpp"
#include "file_checks.hpp"
#include "fleet.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char *kStream = "FLEET";

long env_or(const char *name, long fallback)
{
    const char *v = std::getenv(name);
    return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

// One log file of a node and the record type its lines have ("" when the
// line says: mainlog's type letter).
struct LogFile {
    std::string path, header, type;
};

struct Node {
    std::string name, dir, core_conf, ship_conf;
    std::vector<LogFile> files;
    testing::Process shipper;
    std::map<std::string, long long> totals; // summed over the shipper's runs (status.json)
    int shipper_runs = 0;

    void start_shipper()
    {
        shipper = testing::Process({testing::mtalog_ship_exe(), ship_conf},
                                   dir + "/ship-" + std::to_string(++shipper_runs) + ".log", dir);
    }
    // Adds the counters of the shipper run that just ended (or was killed:
    // its last status, at most 200 ms old).
    void account()
    {
        const auto j = nlohmann::json::parse(testing::read_file(dir + "/state/status.json"), nullptr, false);
        if (!j.is_object())
            return;
        for (const char *k : {"shipped", "duplicates", "found_stored", "restored", "failed_publishes", "incidents",
                              "rounds", "round_messages", "copies_in_stream"})
            totals[k] += j.value(k, 0LL);
        fs::remove(dir + "/state/status.json");
    }
    void kill_shipper()
    {
        shipper.kill9();
        account();
    }
    void stop_shipper()
    {
        if (shipper.running())
            CHECK(shipper.stop(SIGTERM) == 0);
        account();
    }
    [[nodiscard]] nlohmann::json status() const
    {
        return nlohmann::json::parse(testing::read_file(dir + "/state/status.json"), nullptr, false);
    }
    // Caught up, and every record it shipped final: found in the stream by
    // a round, and again by one a reconcile_window later.
    [[nodiscard]] bool reconciled() const
    {
        const auto j = status();
        return j.is_object() && j.value("lag_records", -1) == 0 && j.value("lag_bytes", -1) == 0 &&
               j.value("unverified_records", -1) == 0 && j.value("unfinal_bytes", -1) == 0 &&
               j.value("connected", false);
    }
};

std::string ship_stanza(const Node &n, const std::string &urls)
{
    return "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"" + urls + "\"\n  stream = \"" + kStream +
           "\"\n  node = \"" + n.name +
           "\"\n  state_dir = \"state\"\n  replicas = 3\n  duplicate_window = 5s\n  ack_wait = 1s\n"
           "  retry_max = 1s\n  status_interval = 200ms\n  rotated_idle = 300ms\n  max_pending = 2048\n"
           "  reconcile_interval = 2s\n  reconcile_window = 20s\n}\n";
}

std::string type_of_mainlog(const std::string &line)
{
    std::size_t at = 0;
    for (int i = 0; i < 4 && at != std::string::npos; ++i)
        at = line.find('@', at) == std::string::npos ? std::string::npos : line.find('@', at) + 1;
    if (at == std::string::npos || at >= line.size())
        return "record";
    return line[at] == 'A' ? "attempt" : line[at] == 'C' ? "connection_failure" : "permanent_failure";
}

// What the nodes' files hold: (node, type, line) -> count.
using Records = std::map<std::tuple<std::string, std::string, std::string>, long long>;

Records records_in_files(const std::vector<Node *> &nodes, long long &total)
{
    Records r;
    total = 0;
    for (const Node *n : nodes)
        for (const LogFile &f : n->files)
            for (auto &line : testing::records_of(n->dir + "/" + f.path, f.header)) {
                const std::string type = f.type.empty() ? type_of_mainlog(line) : f.type;
                ++r[{n->name, type, std::move(line)}];
                ++total;
            }
    return r;
}

struct Schedule {
    std::mt19937 rng;
    Clock::time_point start;
    long seconds;
    // The moment `share` of the traffic's time, give or take a second.
    Clock::time_point at(double share)
    {
        const auto jitter = std::uniform_int_distribution<int>(-1000, 1000)(rng);
        return start + std::chrono::milliseconds(static_cast<long>(share * static_cast<double>(seconds) * 1000) + jitter);
    }
};

} // namespace

TEST_CASE("fleet: through rotation, leader kills, a full outage and SIGKILLs mid-publish, every record of three "
          "nodes is in the stream and each reaches the reader once",
          "[fleet]")
{
    if (!testing::nats_server_installed() || !fs::exists("/usr/sbin/logrotate"))
        return;
    const long seconds = env_or("FLEET_SECONDS", 40);
    const long rate = env_or("FLEET_RATE", 1500);
    const unsigned seed = static_cast<unsigned>(env_or("FLEET_SEED", static_cast<long>(std::random_device{}() % 100000)));
    INFO("FLEET_SEED=" << seed);
    testing::TempDir dir;
    testing::NatsCluster cluster(dir, 3);
    const testing::StreamReader reader{cluster.urls(), "", ""};

    Node a, b, c;
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
                                         "\"\nmtalog \"a\" {\n  attempt_logfile = \"attempt.log\"\n"
                                         "  connection_failure_logfile = \"connfail.log\"\n"
                                         "  permanent_failure_logfile = \"bounce.json\"\n"
                                         "  permanent_failure_format = \"json\"\n}\n");
    a.files = {{"attempt.log", "", "attempt"}, {"connfail.log", "", "connection_failure"},
               {"bounce.json", "", "permanent_failure"}};
    testing::write_file(b.core_conf, "modules_path = \"" + testing::modules_dir() +
                                         "\"\nmtalog \"b\" {\n  attempt_logfile = \"attempt.csv\"\n"
                                         "  attempt_format = \"csv\"\n  connection_failure_logfile = \"mainlog.ec\"\n"
                                         "  permanent_failure_logfile = \"mainlog.ec\"\n  rotate_size = 1M\n"
                                         "  rotate_keep = 0\n  compress = zstd\n}\n");
    b.files = {{"attempt.csv", mtalog::csv_header(), "attempt"}, {"mainlog.ec", "", ""}};
    testing::write_file(c.core_conf, "mtalog {\n  attempt_logfile = \"" + c.dir +
                                         "/exim.csv\"\n  attempt_format = \"csv\"\n}\n");
    c.files = {{"exim.csv", mtalog::csv_header(), "attempt"}};
    const std::vector<Node *> nodes{&a, &b, &c};

    std::string faults;
    const auto fault = [&](const std::string &what) {
        faults += what + "; ";
        UNSCOPED_INFO("fault: " << what);
    };
    const auto traffic = [&](Node &n, long secs, int run) {
        return testing::Process({testing::mtacore_exe(), "--config", n.core_conf, "--duration", std::to_string(secs),
                                 "--rate", std::to_string(rate), "--threads", "2", "--reopens", "0", "--quiet",
                                 "--seed", std::to_string(seed * 10 + static_cast<unsigned>(run))},
                                n.dir + "/mtacore-" + std::to_string(run) + ".log", n.dir);
    };
    const auto logrotate = [&](const testing::Process &core) {
        testing::write_file(a.dir + "/logrotate.conf",
                            a.dir + "/attempt.log " + a.dir + "/connfail.log " + a.dir +
                                "/bounce.json {\n  rotate 1000\n  compress\n  create\n  missingok\n  notifempty\n"
                                "  sharedscripts\n  postrotate\n    kill -HUP " +
                                std::to_string(core.pid()) + "\n  endscript\n}\n");
        const auto r = testing::run_command(
            {"/usr/sbin/logrotate", "-f", "-s", a.dir + "/logrotate.state", a.dir + "/logrotate.conf"});
        INFO(r.err);
        CHECK(r.status == 0);
        fault("logrotate of node-a");
    };
    int exim_round = 0;
    const auto exim = [&] {
        ++exim_round;
        testing::exim_deliveries(c.core_conf, 4, static_cast<int>(rate / 2), "r" + std::to_string(exim_round) + "p",
                                 exim_round == 1 ? c.dir + "/exim.csv" : "");
        fault("Exim deliveries" + std::string(exim_round == 1 ? " (file renamed mid-run)" : ""));
    };
    // The tail that must end up with each record once: killed and started again.
    testing::Process tail;
    int tail_runs = 0;
    const auto start_tail = [&] {
        tail = testing::Process({testing::mtalog_ship_exe(), "tail", "--durable", "fleet", "--out-dir", dir / "out",
                                 a.ship_conf},
                                dir / ("tail-" + std::to_string(++tail_runs) + ".log"), a.dir);
    };

    for (Node *n : nodes)
        n->start_shipper();
    start_tail();
    Schedule when{std::mt19937(seed), Clock::now(), seconds};
    testing::Process core_a = traffic(a, seconds, 1);
    testing::Process core_b = traffic(b, seconds, 1);
    // (share of the traffic's time, what happens): in time order.
    std::vector<std::pair<Clock::time_point, std::function<void()>>> plan;
    const auto add = [&](double share, std::function<void()> step) { plan.emplace_back(when.at(share), std::move(step)); };
    add(0.10, exim);
    add(0.15, [&] { logrotate(core_a); });
    int killed_leader = -1;
    add(0.20, [&] {
        std::string leader;
        if (testing::wait_until([&] { return !(leader = reader.leader(kStream)).empty(); }, 10s) &&
            (killed_leader = cluster.index_of(leader)) >= 0) {
            cluster.kill9(killed_leader);
            fault("SIGKILL of stream leader " + leader);
        }
    });
    add(0.27, [&] {
        if (killed_leader >= 0) {
            cluster.start(killed_leader);
            fault("leader restarted");
        }
    });
    add(0.30, [&] {
        a.kill_shipper();
        a.start_shipper();
        fault("SIGKILL of node-a's shipper");
    });
    add(0.35, [&] {
        tail.kill9();
        start_tail();
        fault("SIGKILL of the tail");
    });
    add(0.40, exim);
    add(0.45, [&] { logrotate(core_a); });
    // Every server stopped for longer than twice the duplicate window.
    const auto stop_at = when.at(0.50);
    plan.emplace_back(stop_at, [&] {
        for (int i = 0; i < 3; ++i)
            cluster.stop(i);
        fault("all three servers stopped");
    });
    plan.emplace_back(stop_at + 12s, [&] {
        for (int i = 0; i < 3; ++i)
            cluster.start(i);
        fault("servers started again");
    });
    add(0.55, [&] {
        b.kill_shipper();
        b.start_shipper();
        fault("SIGKILL of node-b's shipper");
    });
    add(0.60, exim);
    add(0.75, [&] { logrotate(core_a); });
    add(0.80, [&] {
        core_b.kill9();
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(when.start + std::chrono::seconds(seconds) -
                                                                           Clock::now())
                              .count();
        core_b = traffic(b, std::max<long>(1, left), 2);
        fault("SIGKILL of node-b's mtacore");
    });
    add(0.85, [&] {
        c.kill_shipper();
        c.start_shipper();
        fault("SIGKILL of node-c's shipper");
    });
    add(0.90, [&] {
        tail.kill9();
        start_tail();
        fault("SIGKILL of the tail");
    });
    std::stable_sort(plan.begin(), plan.end(), [](const auto &x, const auto &y) { return x.first < y.first; });
    for (auto &[at, step] : plan) {
        std::this_thread::sleep_until(at);
        step();
    }
    // The traffic ends; the last shippers catch up and verify.
    CHECK(core_a.wait_exit(static_cast<int>(seconds) * 1000 + 60000) == std::optional<int>(0));
    CHECK(core_b.wait_exit(static_cast<int>(seconds) * 1000 + 60000) == std::optional<int>(0));
    const bool caught_up =
        testing::wait_until([&] { return a.reconciled() && b.reconciled() && c.reconciled(); }, 300s);
    CHECK(caught_up);
    if (!caught_up) {
        // For the post-mortem: what each shipper is doing now (its threads'
        // stacks, where gdb is installed) and its last status.
        for (Node *n : nodes) {
            const std::string out = n->dir + "/stacks-" + std::to_string(n->shipper_runs) + ".txt";
            WARN(n->name << " status: " << testing::read_file(n->dir + "/state/status.json"));
            if (!n->shipper.running())
                WARN(n->name << "'s shipper had ended: " << n->shipper.ended());
            if (n->shipper.running() && std::system("command -v gdb >/dev/null 2>&1") == 0)
                (void)std::system(("gdb -p " + std::to_string(n->shipper.pid()) +
                                   " -batch -ex 'thread apply all bt' >'" + out + "' 2>&1")
                                      .c_str());
        }
    }
    long long in_files = 0;
    const Records expected = records_in_files(nodes, in_files);
    // The stream, read independently (the shippers still running), against
    // the files.
    const auto stored = reader.read_all(kStream);
    for (Node *n : nodes)
        n->stop_shipper();
    Records got;
    std::map<std::string, std::string> payload_of; // id -> payload
    long long copies = 0, id_conflicts = 0;
    for (const auto &m : stored) {
        const std::string type = m.subject.substr(m.subject.rfind('.') + 1);
        ++got[{m.node, type, m.payload}];
        const auto [it, fresh] = payload_of.try_emplace(m.id, m.payload);
        copies += fresh ? 0 : 1;
        id_conflicts += !fresh && it->second != m.payload ? 1 : 0;
    }
    long long missing = 0, extra = 0;
    std::string sample;
    for (const auto &[k, n] : expected) {
        const auto g = got.find(k);
        const long long lost = std::max(0LL, n - (g == got.end() ? 0 : g->second));
        missing += lost;
        if (lost && sample.size() < 2000)
            sample += std::get<0>(k) + " " + std::get<1>(k) + ": " + std::get<2>(k).substr(0, 150) + "\n";
    }
    for (const auto &[k, n] : got) {
        const auto e = expected.find(k);
        extra += std::max(0LL, n - (e == expected.end() ? 0 : e->second));
    }

    // The reader drains the stream, then its files must be the records, once.
    tail.kill9();
    const auto drained = testing::run_command({testing::mtalog_ship_exe(), "tail",
                                               "--durable", "fleet", "--out-dir", dir / "out", "--idle-ms", "3000",
                                               a.ship_conf}, a.dir, "", 300);
    INFO(drained.err);
    CHECK(drained.status == 0);
    Records in_tail;
    long long tail_lines = 0;
    for (const auto &e : fs::directory_iterator(dir / "out")) {
        const std::string name = e.path().filename().string();
        if (name.front() == '.')
            continue; // its state
        const auto dot = name.find('.');
        const std::string node = name.substr(0, dot);
        const std::string type = name.substr(dot + 1, name.size() - dot - 1 - 4); // <node>.<type>.log
        for (auto &line : testing::read_lines(e.path().string())) {
            ++in_tail[{node, type, std::move(line)}];
            ++tail_lines;
        }
    }
    const bool tail_exact = in_tail == expected;
    // Records a tail read from the stream because its durable consumer never
    // delivered them (the servers lost the consumer's bookkeeping), from
    // every tail's messages: "tail: N record(s) the stream holds (...".
    long long tail_recovered = 0;
    std::string tail_says = drained.err;
    for (int i = 1; i <= tail_runs; ++i)
        tail_says += testing::read_file(dir / ("tail-" + std::to_string(i) + ".log"));
    for (std::size_t at = tail_says.find("tail: "); at != std::string::npos; at = tail_says.find("tail: ", at + 1))
        if (const auto held = tail_says.find(" record(s) the stream holds (", at); held != std::string::npos &&
            tail_says.find_first_not_of("0123456789", at + 6) == held)
            tail_recovered += std::stoll(tail_says.substr(at + 6, held - at - 6));

    const auto total = [&](const char *k) { return a.totals[k] + b.totals[k] + c.totals[k]; };
    std::ostringstream result;
    result << "FLEET-RESULT seed=" << seed << " seconds=" << seconds << " rate=" << rate << " records=" << in_files
           << " stream=" << stored.size() << " missing=" << missing << " extra=" << extra << " copies=" << copies
           << " id_conflicts=" << id_conflicts << " tail_lines=" << tail_lines << " tail_exact=" << tail_exact
           << " tail_recovered=" << tail_recovered
           << " failed_publishes=" << total("failed_publishes") << " incidents=" << total("incidents")
           << " restored=" << total("restored") << " found_stored=" << total("found_stored")
           << " rounds=" << total("rounds") << " round_messages=" << total("round_messages")
           << " shipper_copies=" << total("copies_in_stream") << " caught_up=" << caught_up;
    std::printf("%s\n", result.str().c_str());
    WARN(result.str() << "\nfaults: " << faults);
    INFO(sample);
    CHECK(missing == 0);
    CHECK(extra == copies); // nothing the files lack: only copies of records
    CHECK(id_conflicts == 0);
    CHECK(tail_exact);
    CHECK(tail_lines == in_files);
    CHECK(total("failed_publishes") > 0); // the faults hit the publish path
    if (missing || extra) {
        // For the post-mortem: do the replicas' own stores agree? (Each
        // read from one replica; the judgement above is the leader's.)
        std::vector<std::map<std::uint64_t, std::string>> ids(static_cast<std::size_t>(cluster.count()));
        for (int i = 0; i < cluster.count(); ++i)
            for (const auto &m : reader.read_all(kStream, "s" + std::to_string(i)))
                ids[static_cast<std::size_t>(i)][m.seq] = m.id;
        long long differ = 0;
        std::ostringstream sizes;
        for (std::size_t i = 0; i < ids.size(); ++i)
            sizes << " s" << i << "=" << ids[i].size();
        for (const auto &[seq, id] : ids[0])
            for (std::size_t i = 1; i < ids.size(); ++i)
                if (const auto o = ids[i].find(seq); o == ids[i].end() || o->second != id) {
                    ++differ;
                    break;
                }
        WARN("FLEET-REPLICAS seed=" << seed << sizes.str() << " sequences_s0_differs=" << differ);
    }
    bool zst = false, gz = false;
    for (const auto &e : fs::directory_iterator(b.dir))
        zst = zst || e.path().extension() == ".zst";
    for (const auto &e : fs::directory_iterator(a.dir))
        gz = gz || e.path().extension() == ".gz";
    CHECK(zst);
    CHECK(gz);
    // FLEET_DEBUG=DIR keeps everything of a failed run for a post-mortem
    // (FLEET_KEEP=DIR of any run), with the stream as read: seq time id.
    const char *keep = (missing || !tail_exact || !caught_up) && std::getenv("FLEET_DEBUG") ? std::getenv("FLEET_DEBUG")
                                                                                : std::getenv("FLEET_KEEP");
    if (keep) {
        fs::remove_all(keep);
        fs::copy(dir.path(), keep, fs::copy_options::recursive);
        std::ofstream dump(std::string(keep) + "/stream.txt");
        for (const auto &m : stored)
            dump << m.seq << ' ' << m.time_ns << ' ' << m.id << '\n';
    }
}
