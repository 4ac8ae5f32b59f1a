// mtalog-ship's config and the trust it needs: secrets (credentials file,
// server URLs) never echoed; the credentials file read through one
// descriptor; read access to the log directories is enough; a log path that
// is not UTF-8; and TLS's check of the server's name.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fleet.hpp"
#include "ship_config.hpp"

namespace fs = std::filesystem;

namespace {

constexpr const char *kSecret = "hunter2";

// A node's directory: an mtalog config writing `log_name` (mainlog format),
// and a shipper config for `servers` with `extra` in its stanza.
struct ConfigDir {
    testing::TempDir dir;
    std::string ship_conf = dir / "ship.conf";

    explicit ConfigDir(const std::string &servers = "nats://127.0.0.1:9", const std::string &extra = "",
                       const std::string &log_name = "attempt.log")
    {
        testing::write_file(dir / "core.conf", "modules_path = \"" + testing::modules_dir() +
                                                   "\"\nmtalog {\n  attempt_logfile = \"" + log_name +
                                                   "\"\n  log_connection_failures = off\n}\n");
        write_ship_conf(servers, extra);
    }
    void write_ship_conf(const std::string &servers, const std::string &extra) const
    {
        testing::write_file(ship_conf, "mtalog_ship {\n  mtalog_config = \"core.conf\"\n  servers = \"" + servers +
                                           "\"\n  node = \"n1\"\n  state_dir = \"state\"\n  duplicate_window = 2s\n"
                                           "  retry_max = 500ms\n  status_interval = 200ms\n" +
                                           extra + "}\n");
    }
    [[nodiscard]] testing::CommandResult check() const
    {
        // timeout: a credentials file that blocks its reader must not hang the suite
        return testing::run_command({testing::mtalog_ship_exe(), "--check", ship_conf}, dir.path(), "", 20);
    }
    // --check with `text` as the credentials file (mode 0600); its stderr.
    [[nodiscard]] std::string check_credentials(const std::string &text) const
    {
        const std::string secret = dir / "secret";
        fs::remove(secret);
        testing::write_file(secret, text);
        ::chmod(secret.c_str(), 0600);
        const auto r = check();
        CHECK(r.status == 1);
        return r.err;
    }
    [[nodiscard]] testing::CommandResult ship_once(int timeout_s = 60) const
    {
        return testing::run_command({testing::mtalog_ship_exe(), "--once", ship_conf}, dir.path(), "", timeout_s);
    }
};

bool openssl_installed()
{
    if (fs::exists("/usr/bin/openssl"))
        return true;
    WARN("skipped: openssl is not installed (scripts/install-deps installs it)");
    return false;
}

// `name`.pem and `name`-key.pem, a server certificate for `alt_name` (an
// openssl subjectAltName, e.g. "IP:127.0.0.1") signed by the CA ca.pem
// (made on first use).
void make_server_certificate(const std::string &dir, const std::string &name, const std::string &alt_name)
{
    const auto run = [&](const std::vector<std::string> &argv) {
        const auto r = testing::run_command(argv, dir);
        INFO(r.err);
        REQUIRE(r.status == 0);
    };
    if (!fs::exists(dir + "/ca.pem"))
        run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=test-ca"});
    run({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + "-key.pem", "-out",
         name + ".csr", "-subj", "/CN=" + name});
    testing::write_file(dir + "/" + name + ".ext", "subjectAltName=" + alt_name + "\nextendedKeyUsage=serverAuth\n");
    run({"/usr/bin/openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
         "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext"});
}

// A JetStream server on loopback presenting `name`.pem; its tls:// URL.
std::string start_tls_server(const std::string &dir, const std::string &name, testing::Process &server)
{
    const int port = testing::free_port();
    testing::write_file(dir + "/" + name + ".conf", "listen: 127.0.0.1:" + std::to_string(port) +
                                                        "\njetstream { store_dir: \"" + dir + "/js-" + name +
                                                        "\" }\ntls {\n  cert_file: \"" + dir + "/" + name +
                                                        ".pem\"\n  key_file: \"" + dir + "/" + name + "-key.pem\"\n}\n");
    server = testing::Process({testing::nats_server_exe(), "-c", dir + "/" + name + ".conf"}, dir + "/" + name + ".log");
    return "tls://127.0.0.1:" + std::to_string(port);
}

void generate(const ConfigDir &c, int records)
{
    const auto r = testing::run_command({testing::mtacore_exe(), "--config", c.dir / "core.conf", "--generate",
                                         std::to_string(records), "--quiet"},
                                        c.dir.path());
    INFO(r.err);
    REQUIRE(r.status == 0);
}

} // namespace

TEST_CASE("ship config: a credentials file's syntax error is located and explained, its text never shown", "[ship]")
{
    const ConfigDir c("nats://127.0.0.1:9", "  credentials_file = \"secret\"\n");
    const std::string at = "mtalog-ship: " + c.dir / "secret";
    const std::vector<std::pair<std::string, std::string>> cases{
        {"user = \"ship\"\npassword \"hunter2\"\n", ":2:11: expected '=' after the option name, found a quoted value"},
        {"password = \"pw\"\nuser ship hunter2\n", ":2:6: expected '=' after the option name, found a word"},
        {"hunter2\n", ":2:1: expected '=' after the option name, found end of file"},
        {"user = \"ship\"\npassword hunter2 {\n}\n", ":2:10: expected '=' after the option name, found a word"},
        {"user = \"ship\"\nhunter2 = \"x\"\n",
         ":2:1: unknown option in a credentials file, which holds only user, password or token"},
        {"passwort = \"hunter2\"\n",
         ":1:1: unknown option in a credentials file, which holds only user, password or token (did you mean "
         "'password'?)"},
        {"token =\n", ":2:1: expected a value after '=', found end of file"},
        {"hunter2 =\n", ":2:1: expected a value after '=', found end of file"},
        {"\"hunter2\"\n", ":1:2: expected an option name, found a quoted value"},
        {"token = \"hunter2\n", ":1:9: unterminated string: missing closing \""},
        {"include \"hunter2\"\n", ":1:10: expected '=' after the option name, found a quoted value"},
    };
    for (const auto &[text, expected] : cases) {
        INFO(text);
        const std::string err = c.check_credentials(text);
        CHECK(err == at + expected + "\n");
        CHECK(err.find(kSecret) == std::string::npos);
    }
}

TEST_CASE("ship config: a server URL carrying a user, password or token is refused without showing it", "[ship]")
{
    ConfigDir c;
    for (const std::string servers :
         {"nats://ship:hunter2@127.0.0.1:4222", "nats://hunter2@127.0.0.1:4222",
          "nats://127.0.0.1:4222, tls://ship:hunter2@mx.example:4222", "nats://ship:p@ss:hunter2@127.0.0.1:4222"}) {
        INFO(servers);
        c.write_ship_conf(servers, "");
        const auto r = c.check();
        CHECK(r.status == 1);
        CHECK(r.err == "mtalog-ship: " + c.ship_conf +
                           ":3:14: 'servers' must be server URLs without user:password@ or token@: put the user and "
                           "password, or the token, in credentials_file (mode 0600)\n");
        CHECK((r.out + r.err).find(kSecret) == std::string::npos);
    }
    // Refused for another reason: the value is not shown either.
    c.write_ship_conf("http://ship:hunter2@127.0.0.1", "");
    const auto r = c.check();
    CHECK(r.err == "mtalog-ship: " + c.ship_conf + ":3:14: 'servers' must be server URLs starting nats:// or tls://\n");

    // An '@' past the host is not user information.
    c.write_ship_conf("nats://127.0.0.1:4222/x@y", "");
    CHECK(c.check().status == 0);

    // Whatever built the settings, the summary never shows user information.
    mtalog::ship::Settings s;
    s.node = "n1";
    s.servers = {"nats://ship:hunter2@127.0.0.1:4222", "tls://hunter2@mx.example:4222", "nats://127.0.0.1:4223"};
    const std::string shown = mtalog::ship::describe(s);
    CHECK(shown.find(kSecret) == std::string::npos);
    CHECK(shown.find(" nats://(hidden)@127.0.0.1:4222 tls://(hidden)@mx.example:4222 nats://127.0.0.1:4223") !=
          std::string::npos);
}

TEST_CASE("ship config: the credentials file is read through one descriptor: no symbolic link, no special file",
          "[ship]")
{
    const ConfigDir c("nats://127.0.0.1:9", "  credentials_file = \"secret\"\n");
    const std::string secret = c.dir / "secret";
    const std::string at = "mtalog-ship: " + c.ship_conf + ":9:23: credentials_file \"" + secret + "\"";

    testing::write_file(c.dir / "real", "user = \"ship\"\npassword = \"hunter2\"\n");
    ::chmod((c.dir / "real").c_str(), 0600);
    fs::create_symlink(c.dir / "real", secret);
    auto r = c.check();
    CHECK(r.status == 1);
    CHECK(r.err == at + " is a symbolic link: name the file itself\n");

    fs::remove(secret);
    REQUIRE(::mkfifo(secret.c_str(), 0600) == 0); // would block a reader that opens it by name
    r = c.check();
    CHECK(r.status == 1);
    CHECK(r.err == at + " is not a regular file\n");

    fs::remove(secret);
    fs::create_directory(secret);
    ::chmod(secret.c_str(), 0700);
    r = c.check();
    CHECK(r.err == at + " is not a regular file\n");

    fs::remove(secret);
    testing::write_file(secret, "token = \"" + std::string(70000, 'x') + "\"\n");
    ::chmod(secret.c_str(), 0600);
    r = c.check();
    CHECK(r.err == at + " is too large for a credentials file\n");

    fs::remove(secret);
    fs::rename(c.dir / "real", secret);
    ::chmod(secret.c_str(), 0640);
    r = c.check();
    CHECK(r.err == at + " is readable or writable by others (mode 0640): chmod 600 it\n");

    ::chmod(secret.c_str(), 0600);
    r = c.check();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK((r.out + r.err).find(kSecret) == std::string::npos);
}

TEST_CASE("ship config: --check needs read access to the log directories, not write access", "[ship]")
{
    // Root passes access() whatever the mode: as root, the check runs as nobody.
    const bool root = ::geteuid() == 0;
    if (root && (!fs::exists("/usr/bin/setpriv") || !::getpwnam("nobody"))) {
        WARN("skipped: running as root without setpriv (util-linux) or the user nobody");
        return;
    }
    testing::TempDir tmp;
    const std::string d = tmp.path();
    ::chmod(d.c_str(), 0755); // everything here readable by the unprivileged user
    fs::create_directory(d + "/logs");
    testing::write_file(d + "/logs/attempt.log", "2024-01-01 00:00:00 a record\n");
    ::chmod((d + "/logs/attempt.log").c_str(), 0644);
    fs::copy_file(testing::mtalog_ship_exe(), d + "/mtalog-ship");
    ::chmod((d + "/mtalog-ship").c_str(), 0755);
    testing::write_file(d + "/core.conf", "mtalog {\n  attempt_logfile = \"" + d +
                                              "/logs/attempt.log\"\n  log_connection_failures = off\n}\n");
    testing::write_file(d + "/ship.conf", "mtalog_ship {\n  mtalog_config = \"core.conf\"\n"
                                          "  servers = \"nats://127.0.0.1:9\"\n  node = \"n1\"\n}\n");
    for (const char *f : {"/core.conf", "/ship.conf"})
        ::chmod((d + f).c_str(), 0644);
    const std::vector<std::string> as_reader =
        root ? std::vector<std::string>{"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
             : std::vector<std::string>{};
    const auto run_as_reader = [&](std::vector<std::string> argv) {
        argv.insert(argv.begin(), as_reader.begin(), as_reader.end());
        return testing::run_command(argv, d);
    };
    // Owned by root, 0755 (as root); without the write bit (otherwise).
    ::chmod((d + "/logs").c_str(), root ? 0755 : 0555);
    CHECK(run_as_reader({"/usr/bin/test", "-w", d + "/logs"}).status == 1); // the reader cannot write there
    auto r = run_as_reader({d + "/mtalog-ship", "--check", d + "/ship.conf"});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find("ok: node n1: 1 file(s)") != std::string::npos);

    // A directory it cannot list is refused.
    ::chmod((d + "/logs").c_str(), root ? 0711 : 0311);
    r = run_as_reader({d + "/mtalog-ship", "--check", d + "/ship.conf"});
    CHECK(r.status == 1);
    CHECK(r.err == "mtalog-ship: " + d + "/core.conf:2:22: log file \"" + d + "/logs/attempt.log\": directory \"" + d +
                       "/logs\" is not readable\n");
    ::chmod((d + "/logs").c_str(), 0755); // so that the temporary directory can be removed
}

TEST_CASE("ship: a log file whose name is not UTF-8 is checked, shipped once, and its cursor survives", "[ship]")
{
    if (!testing::nats_server_installed())
        return;
    testing::TempDir servers;
    testing::NatsCluster cluster(servers, 1);
    const std::string name = "caf\xe9.log";
    const ConfigDir c(cluster.url(0), "", name);
    generate(c, 500);
    const auto records = static_cast<long long>(testing::records_of(c.dir / name).size());
    REQUIRE(records > 0);

    const auto checked = c.check();
    INFO(checked.err);
    CHECK(checked.status == 0);
    CHECK(checked.out.find("  " + name + " (mainlog, attempt)") != std::string::npos);

    auto r = c.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("stopped: " + std::to_string(records) + " records shipped") != std::string::npos);
    r = c.ship_once(); // from the saved cursor
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("stopped: 0 records shipped") != std::string::npos);
    CHECK(testing::StreamReader{cluster.url(0), "", ""}.messages("MTALOG") == records);
}

TEST_CASE("ship: TLS refuses a server whose certificate the trusted CA signed for another name", "[ship]")
{
    if (!testing::nats_server_installed() || !openssl_installed())
        return;
    testing::TempDir certs;
    const std::string d = certs.path();
    make_server_certificate(d, "right", "IP:127.0.0.1");
    make_server_certificate(d, "other", "DNS:other.example");
    testing::Process right_server, other_server;
    const std::string right = start_tls_server(d, "right", right_server);
    const std::string other = start_tls_server(d, "other", other_server);
    const std::string trust = "  tls_ca = \"" + d + "/ca.pem\"\n";

    // The CA and the server work: a certificate for the server's address is taken.
    ConfigDir c(right, trust);
    generate(c, 100);
    auto r = c.ship_once();
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("stopped: " + std::to_string(testing::records_of(c.dir / "attempt.log").size()) +
                     " records shipped") != std::string::npos);

    // The same CA's certificate for other.example is refused for 127.0.0.1.
    c.write_ship_conf(other, trust);
    r = testing::run_command({"/usr/bin/timeout", "3", testing::mtalog_ship_exe(), "--once", c.ship_conf},
                             c.dir.path());
    INFO(r.err);
    CHECK(r.status == 124); // still retrying when stopped
    CHECK(r.err.find("cannot connect to any of the servers") != std::string::npos);
    CHECK(r.err.find("IP address mismatch") != std::string::npos);
}

TEST_CASE("test support: a command past its limit is stopped and leaves its stacks, not a hung suite", "[ship]")
{
    // What every bounded mtalog-ship run in these tests relies on: one that
    // ignores SIGTERM is killed 15 s later, with what it printed kept.
    const auto started = std::chrono::steady_clock::now();
    const auto r = testing::run_command({"/bin/sh", "-c", "trap '' TERM; echo started; exec sleep 60"}, "", "", 1);
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(r.out == "started\n");
    CHECK(r.status == 124);
    CHECK(r.timed_out);
    INFO(r.err);
    CHECK(r.err.find("still running after 1 s") != std::string::npos);
    CHECK((r.err.find("#0 ") != std::string::npos || r.err.find("(no gdb") != std::string::npos));
    CHECK(took < std::chrono::seconds(40));
}

TEST_CASE("test support: a started process counts as handling a signal only once it handles it itself", "[ship]")
{
    // A forked child shows Catch2's handlers until it execs: those must not
    // count (start_shipper waits for the shipper's own SIGTERM handler).
    testing::TempDir dir;
    testing::Process sleeper({"/bin/sleep", "5"}, dir / "log");
    CHECK_FALSE(sleeper.wait_catching(SIGTERM, 300));
    CHECK(sleeper.stop(SIGTERM) == 128 + SIGTERM);
    testing::Process handler({"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"}, dir / "log");
    CHECK(handler.wait_catching(SIGTERM, 10000));
    CHECK(handler.stop(SIGTERM) == 0);
}
