// mtalog.so inside a real MTA: Debian's Exim (exim4-daemon-heavy) delivers
// real messages over loopback with -odf, its smtp transport's event_action
// calling the adapter through ${dlfunc}: to a closed port (connection
// failures), to an SMTP sink that answers 550 to RCPT (permanent failures)
// and to one that accepts (attempts only). Every record must appear exactly
// once in every format, with the message ids Exim's own mainlog shows, across
// a real logrotate run halfway through.
//
// Exits 77 (meson's "skipped") with the reason when Exim cannot run here:
// not installed, or not running as root (exim -C drops privileges otherwise).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <grp.h>
#include <iostream>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kExim = "/usr/sbin/exim4";
const std::string kLogrotate = "/usr/sbin/logrotate";
const std::string kEximUser = "Debian-exim";

// A minimal SMTP server on 127.0.0.1 (one connection at a time, as Exim's
// -odf deliveries come): 550 to every RCPT, or accept everything.
class SmtpSink {
public:
    explicit SmtpSink(bool reject) : reject_(reject)
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) != 0)
            throw std::runtime_error("SMTP sink: cannot listen on 127.0.0.1");
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~SmtpSink()
    {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] int sessions() const { return sessions_; }

private:
    void serve()
    {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0)
                continue;
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            ++sessions_;
            session(c);
            ::close(c);
        }
    }

    static void say(int c, const std::string &line)
    {
        const std::string out = line + "\r\n";
        if (::send(c, out.data(), out.size(), MSG_NOSIGNAL) < 0) {
        }
    }

    void session(int c)
    {
        say(c, "220 sink.test ESMTP");
        std::string buffer;
        bool in_data = false;
        char chunk[4096];
        for (;;) {
            pollfd p{c, POLLIN, 0};
            if (::poll(&p, 1, 10000) <= 0)
                return;
            const ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
            if (n <= 0)
                return;
            buffer.append(chunk, static_cast<std::size_t>(n));
            std::size_t eol;
            while ((eol = buffer.find("\r\n")) != std::string::npos) {
                const std::string line = buffer.substr(0, eol);
                buffer.erase(0, eol + 2);
                if (in_data) {
                    if (line == ".") {
                        in_data = false;
                        say(c, "250 2.0.0 Ok: queued");
                    }
                    continue;
                }
                const std::string verb = line.substr(0, 4);
                if (verb == "EHLO" || verb == "HELO")
                    say(c, "250 sink.test");
                else if (verb == "MAIL" || verb == "RSET" || verb == "NOOP")
                    say(c, "250 2.0.0 Ok");
                else if (verb == "RCPT")
                    say(c, reject_ ? "550 5.1.1 <nobody@here>: Recipient \"unknown\", sorry @ sink, 100%" : "250 2.1.5 Ok");
                else if (verb == "DATA") {
                    in_data = true;
                    say(c, "354 go ahead");
                } else if (verb == "QUIT") {
                    say(c, "221 2.0.0 Bye");
                    return;
                } else {
                    say(c, "500 5.5.2 what?");
                }
            }
        }
    }

    const bool reject_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> sessions_{0};
    std::thread thread_;
};

// A loopback port nothing listens on: bound, then closed again.
int closed_port()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

void give_to_exim_user(const std::string &path)
{
    const passwd *pw = ::getpwnam(kEximUser.c_str());
    REQUIRE(pw != nullptr);
    REQUIRE(::chown(path.c_str(), pw->pw_uid, pw->pw_gid) == 0);
}

// "<id> => addr", "<id> == addr", "<id> ** addr" lines of Exim's mainlog.
struct EximDelivery {
    std::string id;
    std::string outcome; // "=>", "==" or "**"
    std::string address;
};

std::vector<EximDelivery> exim_deliveries(const std::string &mainlog)
{
    // "date time id flag address ..." (no std::regex: GCC 12 warns falsely
    // inside it under -fsanitize=address, GCC bug 105562)
    std::vector<EximDelivery> out;
    for (const auto &l : testing::read_lines(mainlog)) {
        std::istringstream words(l);
        std::string date, time, id, flag, address;
        if (words >> date >> time >> id >> flag >> address && id.size() == 16 &&
            (flag == "=>" || flag == "==" || flag == "**"))
            out.push_back({id, flag, address});
    }
    return out;
}

// Every line of a log file and its rotated copy, oldest first.
std::vector<std::string> lines_with_rotated(const std::string &path)
{
    std::vector<std::string> lines;
    for (const std::string &p : {path + ".1", path})
        if (fs::exists(p))
            for (auto &l : testing::read_lines(p))
                lines.push_back(std::move(l));
    return lines;
}

std::vector<std::string> split(const std::string &s, char sep)
{
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(s);
    while (std::getline(in, part, sep))
        parts.push_back(part);
    if (!s.empty() && s.back() == sep)
        parts.emplace_back();
    return parts;
}

using Counts = std::map<std::pair<std::string, char>, int>; // (message id, record letter) -> lines

} // namespace

TEST_CASE("Exim delivers over loopback; every event is one record in every format, across a logrotate", "[exim]")
{
    if (!fs::exists(kExim) || ::getpwnam(kEximUser.c_str()) == nullptr) {
        std::cout << "skipped: Exim is not installed (scripts/install-deps exim4-daemon-heavy installs it)\n";
        std::exit(77);
    }
    if (::geteuid() != 0) {
        std::cout << "skipped: the Exim test runs Exim with -C as root; this runs as uid " << ::geteuid() << "\n";
        std::exit(77);
    }
    const int per_kind = std::getenv("MTALOG_EXIM_MESSAGES") ? std::atoi(std::getenv("MTALOG_EXIM_MESSAGES")) : 100;
    REQUIRE(per_kind >= 2);

    testing::TempDir dir;
    // Exim's delivery processes run as its own user: it must reach and write these.
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    for (const char *sub : {"spool", "eximlog", "logs"}) {
        fs::create_directory(dir / sub);
        give_to_exim_user(dir / sub);
    }
    const std::string logs = dir / "logs";
    SmtpSink reject(true), accept(false);
    const int closed = closed_port();

    testing::write_file(dir / "mtalog.conf",
                        "mtalog \"main\" {\n  mainlog = \"" + logs + "/mainlog.ec\"\n}\n"
                        "mtalog \"json\" {\n"
                        "  attempt_logfile = \"" + logs + "/records.json\"\n  attempt_format = json\n"
                        "  connection_failure_logfile = \"" + logs + "/records.json\"\n  connection_failure_format = json\n"
                        "  permanent_failure_logfile = \"" + logs + "/records.json\"\n  permanent_failure_format = json\n}\n"
                        "mtalog \"csv\" {\n"
                        "  attempt_logfile = \"" + logs + "/records.csv\"\n  attempt_format = csv\n"
                        "  connection_failure_logfile = \"" + logs + "/records.csv\"\n  connection_failure_format = csv\n"
                        "  permanent_failure_logfile = \"" + logs + "/records.csv\"\n  permanent_failure_format = csv\n}\n"
                        "mtalog \"template\" {\n" // a template per kind, so a file per kind
                        "  attempt_logfile = \"" + logs + "/attempts.txt\"\n  attempt_format = \"A %i %peer\"\n"
                        "  connection_failure_logfile = \"" + logs + "/connfail.txt\"\n"
                        "  connection_failure_format = \"C %i %peer %errno %err_names\"\n"
                        "  permanent_failure_logfile = \"" + logs + "/permfail.txt\"\n"
                        "  permanent_failure_format = \"P %i %s %C %p [%h{Subject}] %n\"\n}\n");
    // docs/exim.md's event_action line with the message's protocol and
    // headers (two ${dlfunc} calls), with this test's paths.
    std::string event_action = testing::generated_section("docs/exim.md", "exim-event-action-message");
    const std::string readme_so = "/usr/local/lib/x86_64-linux-gnu/mtacore/modules/mtalog.so";
    const std::string readme_conf = "/etc/exim4/mtalog.conf";
    REQUIRE(event_action.rfind("```\n  event_action = ", 0) == 0);
    event_action = event_action.substr(event_action.find('$'));
    event_action = event_action.substr(0, event_action.find('\n'));
    REQUIRE(event_action.find(readme_so) != std::string::npos);
    REQUIRE(event_action.find(readme_conf) != std::string::npos);
    // Exim's delivery processes run as its user, who may not reach the build
    // tree (a clone in a 0700 directory): they load a copy from the test's.
    fs::copy_file(testing::modules_dir() + "/mtalog.so", dir / "mtalog.so");
    fs::permissions(dir / "mtalog.so", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                           fs::perms::others_read | fs::perms::others_exec);
    for (std::size_t at; (at = event_action.find(readme_so)) != std::string::npos;)
        event_action.replace(at, readme_so.size(), dir / "mtalog.so");
    for (std::size_t at; (at = event_action.find(readme_conf)) != std::string::npos;)
        event_action.replace(at, readme_conf.size(), dir / "mtalog.conf");
    testing::write_file(dir / "exim.conf",
                        "primary_hostname = mtalog.test\n"
                        "spool_directory = " + dir / "spool" + "\n"
                        "log_file_path = " + dir / "eximlog" + "/%slog\n"
                        "exim_user = " + kEximUser + "\nexim_group = " + kEximUser + "\n"
                        "keep_environment =\n"
                        "begin routers\n"
                        "loopback:\n  driver = manualroute\n  domains = *\n  route_list = * 127.0.0.1\n"
                        "  self = send\n  transport = remote\n"
                        "begin transports\n"
                        "remote:\n  driver = smtp\n  allow_localhost\n  hosts_try_fastopen = :\n"
                        "  port = ${if eq{$domain}{closed.test}{" + std::to_string(closed) +
                        "}{${if eq{$domain}{reject.test}{" + std::to_string(reject.port()) + "}{" +
                        std::to_string(accept.port()) + "}}}}\n"
                        "  event_action = " + event_action + "\n"
                        "begin retry\n* * F,1h,10m\n");
    testing::write_file(dir / "logrotate.conf", logs + "/*.ec " + logs + "/*.json " + logs + "/*.csv " + logs +
                                                    "/*.txt {\n"
                                                    "  rotate 1\n  nocreate\n  missingok\n}\n");

    const auto started = std::chrono::steady_clock::now();
    int delivered = 0;
    auto deliver = [&](const std::string &domain, int n) {
        // No hints: with no retry data every message to the closed port really
        // connects, and with no wait-remote data no queued (deferred) message
        // rides along on another message's connection to 127.0.0.1.
        fs::remove(dir / "spool/db/retry");
        fs::remove(dir / "spool/db/wait-remote");
        const auto r = testing::run_command({kExim, "-C", dir / "exim.conf", "-odf", "-oi", "-f", "<>",
                                             "user" + std::to_string(n) + "@" + domain},
                                            "", "Subject: mtalog test " + std::to_string(n) + "\n\nhello\n");
        INFO(r.err);
        REQUIRE(r.status == 0);
        ++delivered;
    };
    const char *domains[] = {"closed.test", "reject.test", "accept.test"};
    for (int n = 0; n < per_kind; ++n) {
        if (n == per_kind / 2) {
            const auto r = testing::run_command({kLogrotate, "-v", "-f", "-s", dir / "logrotate.state", dir / "logrotate.conf"});
            INFO(r.out << r.err);
            REQUIRE(r.status == 0);
            INFO("Exim's panic log: " << (fs::exists(dir / "eximlog/paniclog") ? testing::read_file(dir / "eximlog/paniclog") : ""));
            REQUIRE(fs::exists(logs + "/mainlog.ec.1"));
        }
        for (const char *domain : domains)
            deliver(domain, n);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    // What Exim says happened, and so which records each message must have.
    Counts expected;
    std::map<std::string, std::string> domain_of;
    for (const auto &d : exim_deliveries(dir / "eximlog/mainlog")) {
        domain_of[d.id] = d.address.substr(d.address.find('@') + 1);
        expected[{d.id, 'A'}] = 1;
        if (d.outcome == "==")
            expected[{d.id, 'C'}] = 1;
        if (d.outcome == "**")
            expected[{d.id, 'P'}] = 1;
    }
    if (std::getenv("MTALOG_EXIM_DEBUG")) std::cout << testing::read_file(dir / "eximlog/mainlog");
    REQUIRE(domain_of.size() == static_cast<std::size_t>(3 * per_kind));
    for (const auto &[id, domain] : domain_of) {
        INFO(id << " " << domain);
        CHECK(expected.count({id, domain == "closed.test" ? 'C' : domain == "reject.test" ? 'P' : 'A'}) == 1);
    }

    // mainlog: time@id@batch@conn@LETTER@...
    Counts mainlog;
    for (const auto &line : lines_with_rotated(logs + "/mainlog.ec")) {
        const auto f = split(line, '@');
        REQUIRE(f.size() >= 5);
        ++mainlog[{f[1], f[4][0]}];
    }
    CHECK(mainlog == expected);

    // json: one object per line; peers and errnos as Exim gave them.
    Counts json;
    int refused = 0;
    std::string one_failure; // shown in the summary: a real 550, classified
    for (const auto &line : lines_with_rotated(logs + "/records.json")) {
        const auto j = nlohmann::json::parse(line);
        const std::string type = j.at("type");
        ++json[{j.at("message_id"), static_cast<char>(std::toupper(type[0]))}];
        if (type != "connection_failure") // its peer is the address
            CHECK(j.at("remote_ip") == "127.0.0.1");
        if (type != "permanent_failure") // Exim has reset $host_port by then
            CHECK(j.at("peer").at("address") == "127.0.0.1");
        if (type == "attempt")
            CHECK((j.at("peer").at("port") == reject.port() || j.at("peer").at("port") == accept.port() ||
                   j.at("peer").at("port") == closed));
        if (type == "connection_failure") {
            CHECK(j.at("peer").at("port") == closed);
            CHECK(j.at("error").at("errno") == 111); // ECONNREFUSED
            CHECK(j.at("error").at("flags") == nlohmann::json::array({"CONN_ACTION_REQUEUE1", "CONN_ERROR_CONNECT"}));
            ++refused;
        }
        if (type == "permanent_failure") {
            CHECK(j.at("stage_name") == "after_rcpt_to");
            CHECK(std::string(j.at("note")).find("550 5.1.1 <nobody@here>: Recipient \"unknown\", sorry @ sink, 100%") !=
                  std::string::npos);
            // Why it failed, from the sink's reply: the parsed reply and its class.
            CHECK(j.at("reply") == nlohmann::json{{"code", 550}, {"status", "5.1.1"}});
            CHECK(j.at("bounce") == nlohmann::json{{"class", 10}, {"name", "Invalid Recipient"}});
            if (one_failure.empty())
                one_failure = line;
        }
    }
    CHECK(json == expected);
    CHECK(refused == per_kind);

    // csv: a header at the top of each file, then type,timestamp,event_time,message_id,...
    Counts csv;
    for (const std::string &p : {logs + "/records.csv.1", logs + "/records.csv"}) {
        const auto lines = testing::read_lines(p);
        REQUIRE_FALSE(lines.empty());
        CHECK(lines.front().rfind("type,timestamp,event_time,message_id,", 0) == 0);
        for (std::size_t i = 1; i < lines.size(); ++i) {
            const auto f = split(lines[i], ',');
            REQUIRE(f.size() >= 4);
            ++csv[{f[3], static_cast<char>(std::toupper(f[0][0]))}];
        }
    }
    CHECK(csv == expected);

    // template: "A id peer", "C id peer errno names", "P id stage note"
    Counts text;
    std::vector<std::string> template_lines;
    for (const char *name : {"/attempts.txt", "/connfail.txt", "/permfail.txt"})
        for (auto &line : lines_with_rotated(logs + name))
            template_lines.push_back(std::move(line));
    for (const auto &line : template_lines) {
        const auto f = split(line, ' ');
        REQUIRE(f.size() >= 3);
        ++text[{f[1], f[0][0]}];
        if (f[0] == "C")
            CHECK(line == "C " + f[1] + " 127.0.0.1:" + std::to_string(closed) +
                              " 111 CONN_ACTION_REQUEUE1|CONN_ERROR_CONNECT");
        if (f[0] == "P") { // "P id stage class protocol [subject] note"
            REQUIRE(f.size() >= 8);
            CHECK(f[2] == "after_rcpt_to");
            CHECK(f[3] == "10");    // Invalid Recipient
            CHECK(f[4] == "local"); // Exim's $received_protocol for a message from the command line
            CHECK(f[5] == "[mtalog");
            CHECK(f[6] == "test");
        }
    }
    CHECK(text == expected);

    // The adapter reported nothing to Exim's panic log.
    const std::string panic = fs::exists(dir / "eximlog/paniclog") ? testing::read_file(dir / "eximlog/paniclog") : "";
    CHECK(panic.find("mtalog") == std::string::npos);
    CHECK(accept.sessions() == per_kind);
    CHECK(reject.sessions() == per_kind);

    std::map<char, int> by_letter;
    for (const auto &entry : expected)
        ++by_letter[entry.first.second];
    std::cout << "exim: " << delivered << " deliveries in " << seconds << " s; " << expected.size()
              << " records expected (" << by_letter['A'] << " attempts, " << by_letter['C'] << " connection failures, "
              << by_letter['P'] << " permanent failures), found exactly once in each of mainlog, json, csv and template (" << mainlog.size()
              << ", " << json.size() << ", " << csv.size() << ", " << text.size() << "), across a logrotate\n"
              << "exim: a permanent failure as the JSON file has it: " << one_failure << "\n";
}
