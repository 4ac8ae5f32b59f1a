// mtacore as an operator runs it: exit codes, error lines, replay, generate,
// and signals.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "file_checks.hpp"

namespace fs = std::filesystem;

namespace {

std::string config_for(const testing::TempDir &dir, const std::string &stanza_body)
{
    const std::string path = dir / "mtacore.conf";
    testing::write_file(path, "modules_path = \"" + testing::modules_dir() +
                                  "\"\nBinding_Group \"pool-a\" { Binding \"mta1\" { } }\nmtalog \"main\" {\n" +
                                  stanza_body + "\n}\n");
    return path;
}

testing::CommandResult run_mtacore(const std::vector<std::string> &args, const std::string &input = "")
{
    std::vector<std::string> argv{testing::mtacore_exe()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_command(argv, "", input);
}

// One file per hook: a.log, c.log and p.log in `dir`.
std::string three_files_config(const testing::TempDir &dir)
{
    return config_for(dir, "attempt_logfile = \"" + dir / "a.log" + "\"\nconnection_failure_logfile = \"" +
                               dir / "c.log" + "\"\npermanent_failure_logfile = \"" + dir / "p.log" + "\"");
}

std::size_t records_in_three_files(const testing::TempDir &dir)
{
    return testing::read_lines(dir / "a.log").size() + testing::read_lines(dir / "c.log").size() +
           testing::read_lines(dir / "p.log").size();
}

// The figures of "generated N hook calls from T threads in S s (...)".
struct GenerateSummary {
    unsigned long long calls = 0;
    double seconds = -1;
};

GenerateSummary generate_summary(const std::string &out)
{
    GenerateSummary s;
    unsigned threads = 0;
    if (std::sscanf(out.c_str(), "generated %llu hook calls from %u threads in %lf s", &s.calls, &threads,
                    &s.seconds) != 3)
        return {};
    return s;
}

} // namespace

TEST_CASE("--help describes every option and exits 0", "[cli]")
{
    const auto r = run_mtacore({"--help"});
    CHECK(r.status == 0);
    for (const char *word : {"--config", "--check", "--replay", "--generate", "--duration", "--rate", "--threads",
                             "--seed", "--reopens", "SIGHUP", "SIGUSR1", "SIGTERM", "Exit status"})
        CHECK(r.out.find(word) != std::string::npos);
}

TEST_CASE("bad command lines exit 64 with a hint", "[cli]")
{
    CHECK(run_mtacore({}).status == 64);
    const auto r = run_mtacore({"--config", "x", "--threads", "0"});
    CHECK(r.status == 64);
    CHECK(r.err == "mtacore: --threads needs a number from 1 to 1024, not '0'\nTry 'mtacore --help'.\n");
}

TEST_CASE("bad --rate and --duration values exit 64 naming the option", "[cli]")
{
    const std::string hint = "\nTry 'mtacore --help'.\n";
    auto r = run_mtacore({"--config", "x", "--generate", "10", "--rate", "0"});
    CHECK(r.status == 64);
    CHECK(r.err == "mtacore: --rate needs a number of calls per second above 0, not '0'" + hint);
    r = run_mtacore({"--config", "x", "--duration", "junk"});
    CHECK(r.status == 64);
    CHECK(r.err == "mtacore: --duration needs a time above 0 such as 30, 500ms, 30s or 2m, not 'junk'" + hint);
    for (const char *rate : {"-5", "junk", "", ".", "1e3", "inf", "nan", "0.0", "2000/s", "1.2.3"}) {
        INFO("--rate '" << rate << "'");
        CHECK(run_mtacore({"--config", "x", "--generate", "10", "--rate", rate}).status == 64);
    }
    for (const char *duration : {"0", "0s", "-1", "-5s", "", "5x", "1.5s", "s"}) {
        INFO("--duration '" << duration << "'");
        CHECK(run_mtacore({"--config", "x", "--duration", duration}).status == 64);
    }
    r = run_mtacore({"--config", "x", "--rate", "100"});
    CHECK(r.status == 64);
    CHECK(r.err == "mtacore: --rate needs --generate N or --duration D" + hint);
    r = run_mtacore({"--config", "x", "--replay", "-", "--duration", "1s"});
    CHECK(r.status == 64);
    CHECK(r.err == "mtacore: --replay cannot be combined with --generate or --duration" + hint);
}

TEST_CASE("--check accepts a good config and opens nothing", "[cli]")
{
    testing::TempDir dir;
    const auto conf = config_for(dir, "mainlog = \"" + dir / "m.log" + "\"");
    const auto r = run_mtacore({"--config", conf, "--check"});
    CHECK(r.status == 0);
    CHECK(r.out == "mtacore: " + conf + ": configuration OK (1 module instance)\n");
    CHECK_FALSE(std::filesystem::exists(dir / "m.log"));
}

TEST_CASE("a config typo exits 2 naming file:line:column and the right option, writing nothing", "[cli]")
{
    testing::TempDir dir;
    const auto conf = config_for(dir, "  mainlog = \"" + dir / "m.log" + "\"\n  atempt_logfile = \"" + dir / "a.log" + "\"");
    for (const auto &extra : std::vector<std::vector<std::string>>{{"--check"}, {"--generate", "10"}}) {
        std::vector<std::string> args{"--config", conf};
        args.insert(args.end(), extra.begin(), extra.end());
        const auto r = run_mtacore(args);
        CHECK(r.status == 2);
        CHECK(r.err == "mtacore: " + conf +
                           ":5:3: unknown option 'atempt_logfile' in mtalog \"main\" (did you mean 'attempt_logfile'?)\n");
        CHECK_FALSE(std::filesystem::exists(dir / "m.log"));
        CHECK_FALSE(std::filesystem::exists(dir / "a.log"));
    }
}

TEST_CASE("an unknown module exits 2 naming the stanza's position and the missing file", "[cli]")
{
    testing::TempDir dir;
    const std::string conf = dir / "c.conf";
    testing::write_file(conf, "modules_path = \"" + testing::modules_dir() + "\"\nmtalgo \"x\" { }\n");
    const auto r = run_mtacore({"--config", conf, "--check"});
    CHECK(r.status == 2);
    CHECK(r.err == "mtacore: " + conf + ":2:1: " + testing::modules_dir() +
                       "/mtalgo.so: no such module file for stanza 'mtalgo' (did you mean 'mtalog'?)\n");
}

TEST_CASE("--replay writes the records, reports malformed lines by number and exits 1 for them", "[cli]")
{
    testing::TempDir dir;
    const auto conf = config_for(dir, "mainlog = \"" + dir / "m.log" + "\"");
    const std::string input =
        "{\"hook\":\"connection_failure\",\"addr\":\"192.0.2.1:25\",\"err\":[\"CONN_ERROR_CONNECT\"],"
        "\"domain\":\"example.com\",\"binding_slot\":1,\"now\":1700000000}\n"
        "{\"hook\":\"attempt\",\"msg\":{\"id\":\"bad id\"},\"now\":1700000000}\n"
        "not json\n"
        "\n"
        "{\"hook\":\"delivery\"}\n"
        "{\"hook\":\"connection_failure\",\"addr\":\"192.0.2.1\",\"err\":1}\n"
        "{\"hook\":\"connection_failure\",\"err\":[\"CONN_ERROR_NOPE\"]}\n"
        "{\"hook\":\"reopen\",\"extra\":1}\n"
        "{\"hook\":\"permanent_failure\",\"msg\":{\"id\":\"00/01-00002-5F000000\"},\"domain\":\"example.com\","
        "\"now\":1700000000,\"note\":\"550 no\"}\n";
    const auto r = run_mtacore({"--config", conf, "--replay", "-"}, input);
    CHECK(r.status == 1);
    CHECK(r.err.find("<stdin>:2: msg.id: \"bad id\" is not a message id of the form 00/00-25004-31B987F3; line "
                     "skipped\n") != std::string::npos);
    CHECK(r.err.find("<stdin>:3: not valid JSON (") != std::string::npos);
    CHECK(r.err.find("<stdin>:5: hook: unknown hook \"delivery\" (attempt, connection_failure, permanent_failure "
                     "or reopen); line skipped\n") != std::string::npos);
    CHECK(r.err.find("<stdin>:6: addr: \"192.0.2.1\" is not an address like 192.0.2.1:25 or [2001:db8::1]:25; "
                     "line skipped\n") != std::string::npos);
    CHECK(r.err.find("<stdin>:7: err: unknown flag \"CONN_ERROR_NOPE\"; line skipped\n") != std::string::npos);
    CHECK(r.err.find("<stdin>:8: unknown field 'extra'; line skipped\n") != std::string::npos);
    CHECK(r.out.find("replayed 9 lines: 0 attempt, 1 connection_failure, 1 permanent_failure, 0 reopen, "
                     "6 malformed\n") == 0);
    CHECK(testing::read_lines(dir / "m.log") ==
          std::vector<std::string>{
              "1700000000@@@@C@example.com@192.0.2.1:25@pool-a@mta1@1@8192@CONN_ERROR_CONNECT",
              "1700000000@00/01-00002-5F000000@@@P@example.com@0@default@default@0@0@@@550 no"});
}

TEST_CASE("--generate makes exactly N hook calls from T threads, one record each", "[cli]")
{
    testing::TempDir dir;
    const auto conf = three_files_config(dir);
    const auto r = run_mtacore({"--config", conf, "--generate", "5003", "--threads", "3", "--seed", "7", "--reopens", "2",
                            "--quiet"});
    REQUIRE(r.status == 0);
    CHECK(r.out.find("generated 5003 hook calls from 3 threads in ") == 0);
    const auto a = testing::read_lines(dir / "a.log").size();
    const auto c = testing::read_lines(dir / "c.log").size();
    const auto p = testing::read_lines(dir / "p.log").size();
    CHECK(a + c + p == 5003);
    CHECK(r.out.find("  attempt              " + std::string(12 - std::to_string(a).size(), ' ') + std::to_string(a)) !=
          std::string::npos);
    CHECK(r.out.find("  reopen                          2") != std::string::npos);
    CHECK(a > 0);
    CHECK(c > 0);
    CHECK(p > 0);
    // Every attempt carries a distinct message id.
    std::set<std::string> ids;
    for (const auto &line : testing::read_lines(dir / "a.log"))
        ids.insert(line.substr(line.find('@') + 1, 20));
    CHECK(ids.size() == a);
}

// Timing bounds are loose: the machine may be shared and slow to start a run.
TEST_CASE("--rate paces the calls and --duration ends the run when it comes before N", "[cli][rate]")
{
    testing::TempDir dir;
    const auto conf = three_files_config(dir);
    const auto r =
        run_mtacore({"--config", conf, "--generate", "1000000", "--rate", "2000", "--duration", "1s", "--quiet"});
    REQUIRE(r.status == 0);
    INFO(r.out);
    const auto s = generate_summary(r.out);
    CHECK(s.calls >= 1500);
    CHECK(s.calls <= 2600);
    CHECK(s.seconds >= 0.9);
    CHECK(s.seconds <= 3.0);
    CHECK(r.out.find(" calls/s, target 2000)\n") != std::string::npos);
    CHECK(r.out.find("  reopen                          1") != std::string::npos);
    CHECK(records_in_three_files(dir) == s.calls);
}

TEST_CASE("--generate N ends a paced run when it comes before the duration", "[cli][rate]")
{
    testing::TempDir dir;
    const auto conf = three_files_config(dir);
    const auto r = run_mtacore(
        {"--config", conf, "--generate", "300", "--rate", "1000", "--duration", "10s", "--threads", "3", "--quiet"});
    REQUIRE(r.status == 0);
    INFO(r.out);
    const auto s = generate_summary(r.out);
    CHECK(s.calls == 300);
    CHECK(s.seconds >= 0.29); // the 300th call is due 0.299 s in
    CHECK(s.seconds <= 2.5);
    CHECK(records_in_three_files(dir) == 300);
}

TEST_CASE("--duration alone generates until it has passed, paced or not", "[cli][rate]")
{
    testing::TempDir dir;
    const auto conf = three_files_config(dir);
    SECTION("paced, the duration in plain seconds, reopens spread over it")
    {
        const auto r =
            run_mtacore({"--config", conf, "--duration", "1", "--rate", "300", "--reopens", "3", "--quiet"});
        REQUIRE(r.status == 0);
        INFO(r.out);
        const auto s = generate_summary(r.out);
        CHECK(s.calls >= 200);
        CHECK(s.calls <= 400);
        CHECK(s.seconds >= 0.9);
        CHECK(s.seconds <= 3.0);
        CHECK(r.out.find("  reopen                          3") != std::string::npos);
        CHECK(records_in_three_files(dir) == s.calls);
    }
    SECTION("as fast as it can")
    {
        const auto r = run_mtacore({"--config", conf, "--duration", "200ms", "--threads", "1", "--quiet"});
        REQUIRE(r.status == 0);
        INFO(r.out);
        const auto s = generate_summary(r.out);
        CHECK(s.calls > 0);
        CHECK(s.seconds >= 0.19);
        CHECK(s.seconds <= 2.0);
        CHECK(r.out.find("target") == std::string::npos);
        CHECK(records_in_three_files(dir) == s.calls);
    }
}

TEST_CASE("SIGTERM ends a slowly paced run promptly, every call made written", "[cli][rate][signals]")
{
    testing::TempDir dir;
    const auto conf = three_files_config(dir);
    const std::string out_file = dir / "out";
    const std::string exe = testing::mtacore_exe();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(out, 1);
        ::dup2(null, 2);
        // Each of 4 threads sleeps 800 ms between its calls.
        ::execl(exe.c_str(), exe.c_str(), "--config", conf.c_str(), "--duration", "60s", "--rate", "5",
                static_cast<char *>(nullptr));
        ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    REQUIRE(::kill(pid, SIGTERM) == 0);
    const auto signalled = std::chrono::steady_clock::now();
    int status = 0;
    const bool ended =
        testing::wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(5));
    if (!ended) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    REQUIRE(ended);
    CHECK(std::chrono::steady_clock::now() - signalled < std::chrono::seconds(2));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    std::string out;
    for (const auto &line : testing::read_lines(out_file))
        out += line + "\n";
    INFO(out);
    const auto s = generate_summary(out);
    CHECK(s.seconds >= 0.0);
    CHECK(s.calls <= 10);
    CHECK(records_in_three_files(dir) == s.calls);
}

TEST_CASE("SIGHUP reopens the files, SIGTERM shuts down cleanly with exit 0", "[cli][signals]")
{
    testing::TempDir dir;
    const auto conf = config_for(dir, "mainlog = \"" + dir / "m.log" + "\"");
    int err_pipe[2];
    REQUIRE(pipe(err_pipe) == 0);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(err_pipe[1], 2);
        const int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        close(err_pipe[0]);
        close(err_pipe[1]);
        const std::string exe = testing::mtacore_exe();
        execl(exe.c_str(), exe.c_str(), "--config", conf.c_str(), static_cast<char *>(nullptr));
        _exit(127);
    }
    close(err_pipe[1]);
    auto wait_for = [](auto predicate) {
        for (int i = 0; i < 500 && !predicate(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return predicate();
    };
    REQUIRE(wait_for([&] { return std::filesystem::exists(dir / "m.log"); }));
    std::filesystem::rename(dir / "m.log", dir / "m.log.1");
    kill(pid, SIGHUP);
    CHECK(wait_for([&] { return std::filesystem::exists(dir / "m.log"); }));
    kill(pid, SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    const std::string err = testing::read_all_and_close(err_pipe[0]);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(err.find("mtacore: SIGHUP: log files reopened") != std::string::npos);
    CHECK(err.find("mtacore: Terminated: shutting down") != std::string::npos);
    CHECK(err.find("mtalog \"main\": file=\"" + dir / "m.log" + "\" accepted=0 written=0 ") != std::string::npos);
}

TEST_CASE("a syntax error exits 2 from --check with its position", "[cli]")
{
    testing::TempDir dir;
    const std::string conf = dir / "c.conf";
    testing::write_file(conf, "modules_path = \"" + testing::modules_dir() + "\"\nmtalog \"x\" {\n  mainlog = \"oops\n}\n");
    const auto r = run_mtacore({"--config", conf, "--check"});
    CHECK(r.status == 2);
    CHECK(r.err == "mtacore: " + conf + ":3:13: unterminated string: missing closing \"\n");
}

TEST_CASE("the end of a run says how many records were written and how many dropped, and why", "[cli]")
{
    testing::TempDir dir;
    SECTION("nothing dropped")
    {
        const auto conf = config_for(dir, "mainlog = \"" + dir / "m.log" + "\"");
        const auto r = run_mtacore({"--config", conf, "--generate", "3000", "--threads", "2", "--quiet"});
        REQUIRE(r.status == 0);
        CHECK(r.err.find("mtalog \"main\": stopped: 3000 records written, none dropped") != std::string::npos);
        CHECK(r.out.find("modules unloaded (drain took ") != std::string::npos);
    }
    SECTION("a full disk")
    {
        testing::SmallFilesystem small(dir, "size=64k");
        if (!small.usable())
            return;
        testing::SmallFilesystem::fill(small / "filler");
        const auto conf = config_for(dir, "mainlog = \"" + small / "m.log" + "\"\noverflow = drop");
        const auto r = run_mtacore({"--config", conf, "--generate", "3000", "--threads", "2", "--quiet"});
        REQUIRE(r.status == 0);
        INFO(r.err);
        CHECK(r.out.find("every accepted record written") == std::string::npos);
        const auto at = r.err.find("mtalog \"main\": stopped: 0 records written, 3000 dropped (");
        REQUIRE(at != std::string::npos);
        CHECK(r.err.substr(at, r.err.find('\n', at) - at).find("dropped_write_error ") != std::string::npos);
    }
}

namespace {

// Runs `mtacore --replay -` with standard error on a pseudo-terminal (or,
// with `terminal` false, a pipe), feeding it `line` every 100 ms for 3.5 s
// through a pipe (so a start-up delayed by up to 2.5 s still sees lines a
// second into the replay). Returns what it wrote to standard error.
std::string stderr_of_slow_replay(const std::string &conf, bool terminal, const std::string &line)
{
    int err_read = -1, err_write = -1;
    if (terminal) {
        err_read = ::posix_openpt(O_RDWR | O_NOCTTY);
        REQUIRE(err_read >= 0);
        REQUIRE(::grantpt(err_read) == 0);
        REQUIRE(::unlockpt(err_read) == 0);
        err_write = ::open(::ptsname(err_read), O_RDWR | O_NOCTTY);
    } else {
        int p[2];
        REQUIRE(::pipe(p) == 0);
        err_read = p[0];
        err_write = p[1];
    }
    REQUIRE(err_write >= 0);
    int in[2];
    REQUIRE(::pipe(in) == 0);
    const std::string exe = testing::mtacore_exe();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(in[1]); // or standard input never ends
        ::close(err_read);
        ::dup2(in[0], 0);
        ::dup2(err_write, 2);
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::execl(exe.c_str(), exe.c_str(), "--config", conf.c_str(), "--replay", "-", static_cast<char *>(nullptr));
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(err_write);
    // A child that died early must fail a check here, not kill this program.
    const auto previous = std::signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 35; ++i) {
        CHECK(::write(in[1], line.data(), line.size()) == static_cast<ssize_t>(line.size()));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::close(in[1]);
    std::signal(SIGPIPE, previous);
    // A terminal's reader sees EIO, not end of file, once the child is gone.
    std::string err;
    char buf[4096];
    for (ssize_t n; (n = ::read(err_read, buf, sizeof buf)) > 0;)
        err.append(buf, static_cast<std::size_t>(n));
    ::close(err_read);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return err;
}

} // namespace

TEST_CASE("a long replay prints progress lines about once a second on a terminal, and none elsewhere", "[cli]")
{
    testing::TempDir dir;
    const auto conf = config_for(dir, "mainlog = \"" + dir / "m.log" + "\"");
    const std::string line =
        "{\"hook\":\"connection_failure\",\"addr\":\"192.0.2.1:25\",\"err\":[\"CONN_ERROR_CONNECT\"],\"now\":1700000000}\n";
    SECTION("stderr is a terminal")
    {
        const std::string err = stderr_of_slow_replay(conf, true, line);
        INFO(err);
        // "mtacore: N lines replayed, R lines/s, S s elapsed", the first after a second.
        const auto at = err.find(" lines replayed, ");
        REQUIRE(at != std::string::npos);
        const auto elapsed_end = err.find(" s elapsed", at);
        REQUIRE(elapsed_end != std::string::npos);
        const auto elapsed_start = err.rfind(' ', elapsed_end - 1) + 1;
        const double elapsed = std::stod(err.substr(elapsed_start, elapsed_end - elapsed_start));
        CHECK(elapsed >= 1.0);
        CHECK(elapsed < 3.5);
        CHECK(err.find("stopped: 35 records written") != std::string::npos);
    }
    SECTION("stderr is a pipe")
    {
        const std::string err = stderr_of_slow_replay(conf, false, line);
        INFO(err);
        CHECK(err.find("lines replayed") == std::string::npos);
        CHECK(err.find("stopped: 35 records written") != std::string::npos); // the summary still comes
    }
}

TEST_CASE("SIGTERM stops a replay whose producer went quiet, and every whole line read is written", "[cli][signals]")
{
    testing::TempDir dir;
    const std::string log = dir / "m.log", fifo = dir / "feed";
    // Records stay staged until unload: the stop must not lose them.
    const auto conf = config_for(dir, "mainlog = \"" + log + "\"\nflush_interval = 60s");
    const std::string line =
        "{\"hook\":\"connection_failure\",\"addr\":\"192.0.2.1:25\",\"err\":[\"CONN_ERROR_CONNECT\"],\"now\":1700000000}\n";
    std::string input;
    for (int i = 0; i < 5; ++i)
        input += line;
    input += line.substr(0, 30); // and half a line: the producer stalls mid-line
    const bool from_fifo = GENERATE(false, true);
    INFO((from_fifo ? "--replay FIFO" : "--replay - from a pipe"));
    int in[2] = {-1, -1};
    if (from_fifo)
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    else
        REQUIRE(::pipe(in) == 0);
    const std::string exe = testing::mtacore_exe();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (!from_fifo) {
            ::close(in[1]);
            ::dup2(in[0], 0);
        }
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::execl(exe.c_str(), exe.c_str(), "--config", conf.c_str(), "--replay", from_fifo ? fifo.c_str() : "-",
                static_cast<char *>(nullptr));
        ::_exit(127);
    }
    int writer = in[1];
    if (from_fifo)
        writer = ::open(fifo.c_str(), O_WRONLY); // waits for mtacore to open it
    else
        ::close(in[0]);
    REQUIRE(writer >= 0);
    REQUIRE(::write(writer, input.data(), input.size()) == static_cast<ssize_t>(input.size()));
    // mtacore has read it all when nothing is left in the pipe.
    REQUIRE(testing::wait_until([&] {
        int left = -1;
        return ::ioctl(writer, FIONREAD, &left) == 0 && left == 0;
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // and replayed the whole lines
    REQUIRE(::kill(pid, SIGTERM) == 0);
    int status = 0;
    const bool ended = testing::wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(5));
    if (!ended) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    ::close(writer);
    CHECK(ended);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0); // the cut line is not counted malformed
    CHECK(testing::read_lines(log).size() == 5);
}
